"""Typed settings: what ``parse_settings`` makes of good, bad, unknown and nested values; where the LLM endpoint comes
from (settings over environment over the embedded model); and the same settings arriving through the protocol
(``initializationOptions``, ``workspace/configuration``, ``workspace/didChangeConfiguration``)."""

from __future__ import annotations

import asyncio

from lsprotocol import types

from metagpt_lsp.agents.llm.settings import EMBEDDED_MODEL, LlmSettings, resolve_endpoint
from metagpt_lsp.server.settings import Settings, parse_settings, to_json
from metagpt_lsp.testing.lsp_support import WAIT_S, EditorDocument, editor_session, summary

SECRET = "sk-test-0123456789abcdef-never-shown"


def problems_by_path(raw) -> dict[str, str]:
    return {problem.path: str(problem) for problem in parse_settings(raw)[1]}


# -- parse_settings -----------------------------------------------------------------------------------------------

def test_good_nested_camel_case_values_are_typed():
    settings, problems = parse_settings({
        "llm": {"baseUrl": "http://127.0.0.1:8080/v1", "model": "qwen", "maxTokens": 1024, "temperature": 1},
        "syntax": {"enabled": False, "maxParseBytes": 1000},
        "logLevel": "debug",
    })
    assert problems == []
    assert settings.llm.base_url == "http://127.0.0.1:8080/v1"
    assert settings.llm.model == "qwen"
    assert settings.llm.max_tokens == 1024
    assert settings.llm.temperature == 1.0 and isinstance(settings.llm.temperature, float)
    assert settings.syntax == settings.syntax.__class__(enabled=False, max_parse_bytes=1000)
    assert settings.log_level == "debug"
    assert settings.llm.request_timeout_s == LlmSettings().request_timeout_s, "unset values keep their defaults"


def test_section_wrapper_and_snake_case_keys_mean_the_same():
    bare = parse_settings({"llm": {"maxTokens": 99}})
    wrapped = parse_settings({"metagptLsp": {"llm": {"maxTokens": 99}}})
    snake = parse_settings({"llm": {"max_tokens": 99}})
    assert bare == wrapped == snake
    assert bare[0].llm.max_tokens == 99 and bare[1] == []


def test_wrong_types_fall_back_and_name_the_setting():
    settings, problems = parse_settings({
        "llm": {"maxTokens": "512", "temperature": True, "maxRetries": 1.5},
        "syntax": {"enabled": "yes"},
    })
    assert settings == Settings()
    messages = {problem.path: str(problem) for problem in problems}
    assert set(messages) == {"llm.maxTokens", "llm.temperature", "llm.maxRetries", "syntax.enabled"}
    assert "expected int, got str '512'" in messages["llm.maxTokens"] and "using 512" in messages["llm.maxTokens"]
    assert "got bool True" in messages["llm.temperature"]
    assert "got float 1.5" in messages["llm.maxRetries"]
    assert messages["syntax.enabled"].startswith("Setting syntax.enabled:")
    assert "using True" in messages["syntax.enabled"]


def test_values_out_of_range_fall_back_and_say_what_is_allowed():
    messages = problems_by_path({"llm": {"temperature": 3, "baseUrl": "ftp://example.com", "maxTokens": 0},
                                 "logLevel": "loud", "syntax": {"maxParseBytes": -1}})
    assert "3.0 is not between 0 and 2; using 0.0" in messages["llm.temperature"]
    assert "not an http:// or https:// URL; using the default (none)" in messages["llm.baseUrl"]
    assert "0 is not between 1 and 32768" in messages["llm.maxTokens"]
    assert "'loud' is not one of error, warning, info, debug; using 'info'" in messages["logLevel"]
    assert "positive number of bytes" in messages["syntax.maxParseBytes"]


def test_one_bad_value_does_not_discard_its_good_siblings():
    settings, problems = parse_settings({"llm": {"model": "m", "maxTokens": -5, "maxRetries": 4}})
    assert (settings.llm.model, settings.llm.max_tokens, settings.llm.max_retries) == ("m", 512, 4)
    assert [problem.path for problem in problems] == ["llm.maxTokens"]


def test_unknown_settings_are_reported_and_ignored():
    settings, problems = parse_settings({"bogus": 1, "llm": {"colour": "red", "model": "x"}})
    assert settings.llm.model == "x"
    assert {problem.path: problem.message for problem in problems} == {
        "bogus": "unknown setting, ignored", "llm.colour": "unknown setting, ignored"}


def test_wrong_shapes_of_branches_and_of_the_whole_tree():
    messages = problems_by_path({"llm": "gpt-4o", "syntax": None})
    assert messages == {"llm": "Setting llm: expected an object, got str; ignored"}
    settings, problems = parse_settings("fast please")
    assert settings == Settings()
    assert [str(problem) for problem in problems] == ["Setting metagptLsp: expected an object, got str; ignored"]
    assert parse_settings(None) == (Settings(), [])


def test_a_bad_value_keeps_the_value_set_before_not_the_default():
    earlier, _ = parse_settings({"llm": {"maxTokens": 100, "model": "a"}})
    later, problems = parse_settings({"llm": {"maxTokens": -1}}, earlier)
    assert later.llm.max_tokens == 100 and later.llm.model == "a"
    assert "using 100" in str(problems[0])


def test_nullable_values_accept_null_and_to_json_round_trips():
    settings, problems = parse_settings({"llm": {"baseUrl": None, "model": None}})
    assert problems == [] and settings.llm.base_url is None
    custom, _ = parse_settings({"llm": {"model": "m", "temperature": 0.5}, "syntax": {"enabled": False}})
    as_json = to_json(custom)
    assert as_json["llm"]["model"] == "m" and as_json["syntax"]["enabled"] is False
    assert "maxParseBytes" in as_json["syntax"]
    assert parse_settings(as_json) == (custom, [])


def test_an_api_key_pasted_into_settings_is_refused_without_echoing_it():
    settings, problems = parse_settings({"llm": {"apiKey": SECRET}})
    assert [problem.path for problem in problems] == ["llm.apiKey"]
    assert SECRET not in str(problems[0]) and SECRET not in repr(problems[0])
    assert SECRET not in repr(settings)


# -- where the endpoint comes from --------------------------------------------------------------------------------

ENVIRONMENT = {"OPENAI_BASE_URL": "http://env.example/v1", "METAGPT_LSP_MODEL": "env-model",
               "OPENAI_API_KEY": "sk-from-openai-var", "TEAM_KEY": SECRET}


def test_settings_win_over_the_environment():
    settings, _ = parse_settings({"llm": {"baseUrl": "http://settings.example/v1/", "model": "settings-model"}})
    endpoint = resolve_endpoint(settings.llm, ENVIRONMENT)
    assert endpoint.base_url == "http://settings.example/v1"
    assert endpoint.model == "settings-model"
    assert not endpoint.embedded


def test_environment_wins_over_defaults():
    endpoint = resolve_endpoint(LlmSettings(), ENVIRONMENT)
    assert (endpoint.base_url, endpoint.model, endpoint.api_key) == (
        "http://env.example/v1", "env-model", "sk-from-openai-var")


def test_without_any_endpoint_the_embedded_model_is_used():
    endpoint = resolve_endpoint(LlmSettings(), {"OPENAI_API_KEY": "sk-unused"})
    assert endpoint.embedded and endpoint.base_url is None and endpoint.model == EMBEDDED_MODEL
    assert endpoint.api_key is None, "a key must not travel to an endpoint it does not belong to"
    assert resolve_endpoint(LlmSettings(), {"METAGPT_LSP_MODEL": "local-x"}).model == "local-x"


def test_the_key_is_read_from_the_variable_named_by_api_key_env_and_never_shown():
    settings, problems = parse_settings({"llm": {"baseUrl": "https://api.example/v1", "apiKeyEnv": "TEAM_KEY"}})
    assert problems == []
    endpoint = resolve_endpoint(settings.llm, ENVIRONMENT)
    assert endpoint.api_key == SECRET
    for shown in (repr(endpoint), str(endpoint), f"{endpoint}", repr(settings), str(to_json(settings))):
        assert SECRET not in shown
    assert "api_key=set" in repr(endpoint)
    assert resolve_endpoint(settings.llm, {}).api_key is None
    assert "api_key=unset" in repr(resolve_endpoint(settings.llm, {}))


# -- through the protocol -----------------------------------------------------------------------------------------

BROKEN = "def f(x)\n    return x\n"


async def test_bad_initialization_option_is_shown_and_the_default_kept():
    options = {"syntax": {"enabled": "sometimes"}, "llm": {"maxTokens": 10**9}}
    async with editor_session("visual-studio-code", initialization_options=options) as client:
        popup = await client.popup("syntax.enabled")
        assert "llm.maxTokens" in popup.message and "using True" in popup.message
        assert popup.type == types.MessageType.Warning
        await client.log_line("syntax.enabled", "'sometimes'")

        doc = EditorDocument("file:///project/f.py", BROKEN)
        doc.open(client)
        assert len((await client.publish_for(doc.uri, 1)).diagnostics) == 1, "syntax checks must stay on"


async def test_good_initialization_options_take_effect():
    async with editor_session("visual-studio-code+noconfig", initialization_options={
            "metagptLsp": {"syntax": {"enabled": False}}}) as client:
        doc = EditorDocument("file:///project/f.py", BROKEN)
        doc.open(client)
        assert summary((await client.publish_for(doc.uri, 1)).diagnostics) == []
        assert client.seen(types.WORKSPACE_CONFIGURATION) == [], "no workspace/configuration without support"
        assert client.seen(types.WINDOW_SHOW_MESSAGE) == []


async def test_workspace_configuration_answered_by_the_client_is_applied():
    async with editor_session("neovim@v0.11.0+push", configuration={
            "metagptLsp": {"syntax": {"enabled": False}, "llm": {"temperature": 9}}}) as client:
        await client.log_line("settings from workspace/configuration applied")
        asked = client.seen(types.WORKSPACE_CONFIGURATION)
        assert [item.section for item in asked[0].items] == ["metagptLsp"]
        assert "llm.temperature" in (await client.popup("temperature")).message

        doc = EditorDocument("file:///project/f.py", BROKEN)
        doc.open(client)
        assert summary((await client.publish_for(doc.uri, 1)).diagnostics) == []


async def test_did_change_configuration_rechecks_open_documents():
    async with editor_session("visual-studio-code", configuration={"metagptLsp": {}}) as client:
        await client.log_line("settings from workspace/configuration applied")
        doc = EditorDocument("file:///project/f.py", BROKEN)
        doc.open(client)
        assert len((await client.publish_for(doc.uri, 1)).diagnostics) == 1

        cleared = client.next_publish_for(doc.uri)
        client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
            settings={"metagptLsp": {"syntax": {"enabled": False}}}))
        off = await asyncio.wait_for(cleared, WAIT_S)
        assert summary(off.diagnostics) == [], "turning syntax checks off must clear their diagnostics"

        # A notification without our section makes the server ask the client again.
        client.set_configuration({"metagptLsp": {"syntax": {"enabled": True}}})
        back = client.next_publish_for(doc.uri)
        client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
        restored = await asyncio.wait_for(back, WAIT_S)
        assert restored.version == 1 and len(restored.diagnostics) == 1


async def test_pull_client_is_asked_to_refresh_after_a_settings_change():
    async with editor_session("visual-studio-code+pull+refresh") as client:
        doc = EditorDocument("file:///project/f.py", BROKEN)
        doc.open(client)
        before = await client.pull(doc.uri)
        assert len(before.items) == 1

        refreshed = client.expect(types.WORKSPACE_DIAGNOSTIC_REFRESH, lambda _params: True)
        client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
            settings={"metagptLsp": {"syntax": {"enabled": False}}}))
        await asyncio.wait_for(refreshed, WAIT_S)
        after = await client.pull(doc.uri, previous_result_id=before.result_id)
        assert after.kind == "full" and summary(after.items) == []
        assert client.published == []


def test_the_embedded_model_gets_longer_timeouts_unless_the_user_set_them():
    from metagpt_lsp.agents.llm.settings import EMBEDDED_REQUEST_TIMEOUT_S, EMBEDDED_TASK_DEADLINE_S, for_endpoint

    embedded = resolve_endpoint(LlmSettings(), {})
    adjusted = for_endpoint(LlmSettings(), embedded)
    assert (adjusted.request_timeout_s, adjusted.task_deadline_s) == (EMBEDDED_REQUEST_TIMEOUT_S,
                                                                      EMBEDDED_TASK_DEADLINE_S)
    chosen = for_endpoint(LlmSettings(request_timeout_s=30.0), embedded)
    assert chosen.request_timeout_s == 30.0, "a timeout the user chose is kept"
    hosted = resolve_endpoint(LlmSettings(base_url="https://api.example.com/v1"), {})
    assert for_endpoint(LlmSettings(), hosted) == LlmSettings(), "hosted endpoints keep the defaults"
