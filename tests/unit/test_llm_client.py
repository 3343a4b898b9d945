"""LlmClient against the scripted OpenAI-compatible server, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import time

import pytest

from metagpt_lsp.agents.llm.client import LlmClient
from metagpt_lsp.agents.llm.errors import LlmBadReply, LlmError, LlmRateLimited, LlmRejected, LlmTimeout, LlmUnavailable
from metagpt_lsp.agents.llm.settings import LlmEndpoint, LlmSettings, resolve_endpoint
from metagpt_lsp.testing.scripted_llm import Rule, ScriptedLlm

ASK = [{"role": "system", "content": "You explain Python errors."},
       {"role": "user", "content": "Why ZeroDivisionError?"}]
SCHEMA = {"type": "object", "properties": {"cause": {"type": "string"}}, "required": ["cause"]}


def fast_client(server: ScriptedLlm, **settings) -> LlmClient:
    endpoint = LlmEndpoint(server.base_url, server.model, "sk-scripted", embedded=False)
    return LlmClient(LlmSettings(**settings), endpoint, backoff_base_s=0.01, backoff_max_s=0.05)


async def test_a_completion_carries_the_settings_and_reports_usage(scripted_llm, make_llm_client):
    scripted_llm.script(Rule(reply="len(xs) is 0 when the list is empty.", last_user="ZeroDivision"))
    client = make_llm_client(max_tokens=64, temperature=0.0, repeat_penalty=1.1)
    reply = await client.complete(ASK, task_id="t1", max_tokens=10_000)
    assert reply.text == "len(xs) is 0 when the list is empty." and reply.finish_reason == "stop"
    body = scripted_llm.completions[0].body
    assert body["max_tokens"] == 64 and body["temperature"] == 0.0 and body["repeat_penalty"] == 1.1
    assert body["messages"] == ASK and not body.get("stream")
    prompt = sum(len(m["content"]) for m in ASK) // 4
    usage = client.usage_for("t1")
    assert (usage.prompt_tokens, usage.completion_tokens, usage.requests) == (prompt, len(reply.text) // 4, 1)


async def test_a_reply_cut_by_max_tokens_says_so(scripted_llm, make_llm_client):
    scripted_llm.script(Rule(reply="word " * 100))
    reply = await make_llm_client(max_tokens=5).complete(ASK)
    assert reply.truncated and len(reply.text) == 20


async def test_streaming_yields_deltas_that_make_the_reply(scripted_llm, llm_client):
    scripted_llm.script(Rule(reply="def mean(xs):\n    return sum(xs) / len(xs)\n"))
    deltas = [delta async for delta in llm_client.stream(ASK, task_id="s")]
    assert len(deltas) > 1 and "".join(deltas) == "def mean(xs):\n    return sum(xs) / len(xs)\n"
    assert scripted_llm.completions[0].body["stream"] is True
    assert llm_client.usage_for("s").completion_tokens == len("".join(deltas)) // 4


async def test_a_429_is_retried_after_the_servers_retry_after(scripted_llm, llm_client):
    scripted_llm.script(Rule(fault="429", retry_after_s=0.3, times=1), Rule(reply="fine"))
    started = time.monotonic()
    reply = await llm_client.complete(ASK)
    assert reply.text == "fine" and len(scripted_llm.completions) == 2
    assert time.monotonic() - started >= 0.3  # backoff alone would be ~0.01 s


async def test_rate_limits_that_never_end_give_llm_rate_limited(scripted_llm, make_llm_client):
    scripted_llm.script(Rule(fault="429", retry_after_s=0))
    with pytest.raises(LlmRateLimited, match="HTTP 429.*3 attempts"):
        await make_llm_client(max_retries=2).complete(ASK)
    assert len(scripted_llm.completions) == 3


async def test_server_errors_exhaust_the_retries_with_a_clear_message(scripted_llm, make_llm_client):
    scripted_llm.script(Rule(fault="500"))
    with pytest.raises(LlmError) as raised:
        await make_llm_client(max_retries=2).complete(ASK)
    assert len(scripted_llm.completions) == 3
    message = str(raised.value)
    assert scripted_llm.base_url in message and "HTTP 500" in message and "3 attempts" in message
    assert "scripted internal error" in message


async def test_a_slow_endpoint_gives_llm_timeout_without_retrying(scripted_llm, make_llm_client):
    scripted_llm.script(Rule(reply="late", latency_s=3))
    with pytest.raises(LlmTimeout, match="llm.requestTimeoutS"):
        await make_llm_client(request_timeout_s=0.2).complete(ASK)
    assert len(scripted_llm.completions) == 1


async def test_cancelling_the_task_aborts_the_http_request(scripted_llm, llm_client):
    scripted_llm.script(Rule(fault="hang"))
    task = asyncio.create_task(llm_client.complete(ASK))
    (request,) = await scripted_llm.wait_for_requests(1)
    task.cancel()
    await asyncio.wait_for(request.disconnected.wait(), 5)
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_cancelling_a_streaming_consumer_aborts_the_stream(scripted_llm, llm_client):
    scripted_llm.script(Rule(fault="hang"))

    async def consume():
        return [delta async for delta in llm_client.stream(ASK)]

    task = asyncio.create_task(consume())
    (request,) = await scripted_llm.wait_for_requests(1)
    task.cancel()
    await asyncio.wait_for(request.disconnected.wait(), 5)


async def test_malformed_json_gives_llm_bad_reply(scripted_llm, llm_client):
    scripted_llm.script(Rule(fault="malformed"))
    with pytest.raises(LlmBadReply, match="not valid OpenAI-compatible JSON"):
        await llm_client.complete(ASK)


async def test_a_truncated_stream_raises_instead_of_passing_for_a_whole_reply(scripted_llm, llm_client):
    scripted_llm.script(Rule(reply="def f():\n    return 1\n" * 4, fault="truncate"))
    received: list[str] = []
    with pytest.raises(LlmBadReply, match="partial reply was discarded"):
        async for delta in llm_client.stream(ASK):
            received.append(delta)
    assert received  # text had arrived, and still the stream ended in an error
    scripted_llm.script(Rule(reply="whole"))
    assert [d async for d in llm_client.stream(ASK)] == ["whole"]  # nothing partial was cached
    assert len(scripted_llm.completions) == 2


async def test_a_stream_that_ends_without_finishing_is_a_bad_reply(scripted_llm, llm_client):
    scripted_llm.script(Rule(reply="return sum(xs) / len(xs)", fault="unfinished"))
    with pytest.raises(LlmBadReply, match="ended its stream before the reply was complete"):
        async for _ in llm_client.stream(ASK):
            pass


async def test_a_truncated_body_is_a_bad_reply(scripted_llm, make_llm_client):
    scripted_llm.script(Rule(reply="x" * 200, fault="truncate"))
    with pytest.raises(LlmBadReply, match="partial reply was discarded"):
        await make_llm_client(max_retries=1).complete(ASK)


async def test_a_stopped_server_gives_llm_unavailable_naming_the_settings():
    server = await ScriptedLlm().start()
    client = fast_client(server, max_retries=1)
    await server.stop()
    with pytest.raises(LlmUnavailable) as raised:
        await client.complete(ASK)
    message = str(raised.value)
    assert server.base_url in message and "is the server running?" in message and "OPENAI_BASE_URL" in message


async def test_json_schema_refused_falls_back_to_json_object_and_is_remembered():
    async with ScriptedLlm([Rule(reply='{"cause": "empty list"}')], llama_cpp=True) as server:
        client = fast_client(server)
        assert await client.complete_json(ASK, SCHEMA) == {"cause": "empty list"}
        assert [r.response_format_type for r in server.completions] == ["json_schema", "json_object"]
        assert json.dumps(SCHEMA, separators=(",", ":")) in server.completions[1].last_user_message
        assert await client.complete_json(ASK + [{"role": "user", "content": "again"}], SCHEMA) == {
            "cause": "empty list"}
        assert [r.response_format_type for r in server.completions] == ["json_schema", "json_object", "json_object"]
        assert client.structured_mode == "json_object"


async def test_json_schema_is_used_where_it_works(scripted_llm, llm_client):
    scripted_llm.script(Rule(reply='{"cause": "x"}'))
    assert await llm_client.complete_json(ASK, SCHEMA) == {"cause": "x"}
    (request,) = scripted_llm.completions
    assert request.response_format_type == "json_schema" and request.body["response_format"]["json_schema"][
        "schema"] == SCHEMA
    assert request.body["messages"] == ASK and llm_client.structured_mode == "json_schema"


async def test_an_endpoint_without_json_modes_gets_plain_text_parsed_tolerantly():
    reply = 'Sure! Here it is:\n```json\n{"cause": "line one\nline two",}\n```\nHope it helps.'
    async with ScriptedLlm([Rule(reply=reply)], reject_params=("response_format",)) as server:
        client = fast_client(server)
        assert await client.complete_json(ASK, SCHEMA) == {"cause": "line one\nline two"}
        assert [r.response_format_type for r in server.completions] == ["json_schema", "json_object", None]
        assert '"required":["cause"]' in server.completions[-1].last_user_message
        assert client.structured_mode == "text"


async def test_a_passing_server_error_does_not_give_up_json_schema(scripted_llm, llm_client):
    scripted_llm.script(Rule(fault="500", times=1), Rule(reply='{"cause": "x"}'))
    assert await llm_client.complete_json(ASK, SCHEMA) == {"cause": "x"}
    assert await llm_client.complete_json(ASK + [{"role": "user", "content": "again"}], SCHEMA) == {"cause": "x"}
    assert [r.response_format_type for r in scripted_llm.completions] == ["json_schema"] * 3
    assert llm_client.structured_mode == "json_schema" and llm_client.failed_modes == set()


async def test_a_server_error_without_retries_fails_that_call_only(scripted_llm, make_llm_client):
    client = make_llm_client(max_retries=0)
    scripted_llm.script(Rule(fault="500", times=1), Rule(reply='{"cause": "x"}'))
    with pytest.raises(LlmError, match="HTTP 500"):
        await client.complete_json(ASK, SCHEMA)
    assert await client.complete_json(ASK, SCHEMA) == {"cause": "x"}
    assert [r.response_format_type for r in scripted_llm.completions] == ["json_schema", "json_schema"]
    assert client.failed_modes == set()


async def test_a_refused_json_schema_is_told_once_in_the_log(caplog):
    caplog.set_level(logging.INFO, logger="metagpt_lsp")
    async with ScriptedLlm([Rule(reply='{"cause": "x"}')], llama_cpp=True) as server:
        client = fast_client(server)
        await asyncio.gather(*(client.complete_json(ASK + [{"role": "user", "content": str(n)}], SCHEMA)
                               for n in range(3)))
        await client.complete_json(ASK, SCHEMA)
    told = [r for r in caplog.records if "from now on" in r.getMessage()]
    assert len(told) == 1 and told[0].levelno == logging.INFO
    assert "json_schema" in told[0].getMessage() and "as json_object from now on" in told[0].getMessage()


async def test_a_json_reply_without_required_keys_is_a_bad_reply(scripted_llm, llm_client):
    scripted_llm.script(Rule(reply='{"other": 1}'))
    with pytest.raises(LlmBadReply, match="lacks cause"):
        await llm_client.complete_json(ASK, SCHEMA)


async def test_identical_requests_are_paid_once(scripted_llm, llm_client):
    first = await llm_client.complete(ASK, task_id="a")
    second = await llm_client.complete(ASK, task_id="b")
    assert second.text == first.text and second.cached and not first.cached
    assert len(scripted_llm.completions) == 1
    assert llm_client.usage_for("b").total_tokens == 0 and llm_client.usage_for("b").cache_hits == 1
    await llm_client.complete(ASK, task_id="b", temperature=0.7)
    assert len(scripted_llm.completions) == 2  # a different parameter is a different request


async def test_concurrent_identical_requests_share_one_call_and_survive_a_cancelled_twin(scripted_llm, llm_client):
    scripted_llm.script(Rule(reply="shared", latency_s=0.3))
    first = asyncio.create_task(llm_client.complete(ASK))
    (request,) = await scripted_llm.wait_for_requests(1)
    second = asyncio.create_task(llm_client.complete(ASK))  # tasks start in order: both join the call in flight
    third = asyncio.create_task(llm_client.complete(ASK))  # before the first one handles its cancellation
    first.cancel()
    assert (await second).text == "shared" and (await third).text == "shared"
    assert len(scripted_llm.completions) == 1 and not request.disconnected.is_set()


async def test_usage_is_counted_per_task_and_in_total(scripted_llm, llm_client):
    scripted_llm.script(Rule(reply="x" * 40, last_user="one"), Rule(reply="y" * 80, last_user="two"))
    await llm_client.complete([{"role": "user", "content": "one" * 4}], task_id="t1")
    await llm_client.complete([{"role": "user", "content": "two" * 8}], task_id="t2")
    await llm_client.complete([{"role": "user", "content": "two" * 8}], task_id="t1")
    t1, t2, total = llm_client.usage_for("t1"), llm_client.usage_for("t2"), llm_client.total_usage
    assert (t1.prompt_tokens, t1.completion_tokens, t1.requests, t1.cache_hits) == (3, 10, 1, 1)
    assert (t2.prompt_tokens, t2.completion_tokens, t2.requests) == (6, 20, 1)
    assert (total.prompt_tokens, total.completion_tokens, total.requests, total.cache_hits) == (9, 30, 2, 1)
    assert llm_client.usage_for("unknown").total_tokens == 0


async def test_a_refused_repeat_penalty_is_dropped_and_remembered():
    async with ScriptedLlm(reject_params=("repeat_penalty",)) as server:
        client = fast_client(server)
        assert (await client.complete(ASK)).text == "OK"
        assert (await client.complete(ASK + [{"role": "user", "content": "more"}])).text == "OK"
        assert ["repeat_penalty" in r.body for r in server.completions] == [True, False, False]


async def test_the_embedded_base_url_is_provided_lazily_and_once(scripted_llm):
    calls = []

    async def start_embedded() -> str:
        calls.append(1)
        return scripted_llm.base_url

    client = LlmClient(LlmSettings(), LlmEndpoint(None, "embedded", None, embedded=True),
                       base_url_provider=start_embedded)
    assert calls == []
    replies = await asyncio.gather(client.complete(ASK), client.complete(ASK + [{"role": "user", "content": "2"}]))
    assert [r.text for r in replies] == ["OK", "OK"] and calls == [1]
    assert scripted_llm.completions[0].body["repeat_penalty"] == 1.1
    await client.aclose()


async def test_no_endpoint_and_a_failing_embedded_model_give_llm_unavailable():
    with pytest.raises(LlmUnavailable, match="llm.baseUrl or OPENAI_BASE_URL"):
        await LlmClient(LlmSettings(), LlmEndpoint(None, "m", None, embedded=True)).complete(ASK)

    def broken() -> str:
        raise RuntimeError("model file missing")

    client = LlmClient(LlmSettings(), LlmEndpoint(None, "m", None, embedded=True), base_url_provider=broken)
    with pytest.raises(LlmUnavailable, match="model file missing"):
        await client.complete(ASK)


async def test_openai_without_a_key_is_refused_before_anything_is_sent():
    client = LlmClient(LlmSettings(), LlmEndpoint("https://api.openai.com/v1", "gpt-4o-mini", None, embedded=False))
    with pytest.raises(LlmRejected, match="OPENAI_API_KEY"):
        await client.complete(ASK)


async def test_the_api_key_is_sent_in_authorization_only_and_never_logged(scripted_llm, caplog, monkeypatch):
    secret = "sk-very-secret-0123456789abcdef"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    monkeypatch.setenv("OPENAI_BASE_URL", scripted_llm.base_url)
    for name in ("", "openai", "httpx2", "httpx", "httpcore", "metagpt_lsp"):
        caplog.set_level(logging.DEBUG, logger=name or None)
    endpoint = resolve_endpoint(LlmSettings())
    client = LlmClient(LlmSettings(), endpoint, backoff_base_s=0.01, backoff_max_s=0.02)
    scripted_llm.script(Rule(fault="500", times=1), Rule(reply="done"))
    assert (await client.complete(ASK)).text == "done"
    assert "".join([d async for d in client.stream(ASK + [{"role": "user", "content": "s"}])]) == "done"
    await client.aclose()
    assert caplog.records and any("retry" in r.getMessage() for r in caplog.records)
    logged = "\n".join(f"{r.getMessage()} {r.args!r} {r.__dict__!r}" for r in caplog.records)
    assert secret not in logged and secret not in repr(endpoint) and secret not in repr(client.__dict__)
    assert [r.api_key for r in scripted_llm.requests] == [secret] * 3
    for request in scripted_llm.requests:
        assert secret not in json.dumps(request.headers) and secret not in json.dumps(request.body)


def test_importing_the_client_does_not_import_openai():
    code = "import sys, metagpt_lsp.agents.llm.client; assert 'openai' not in sys.modules, 'openai imported'"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).returncode == 0


async def test_a_prompt_with_a_lone_surrogate_is_sent_with_a_replacement_character(scripted_llm, llm_client):
    """An editor may send a lone surrogate, which the document keeps; it cannot be encoded as UTF-8, so the model
    gets U+FFFD in its place (a surrogate pair, its character), and the caller's messages are left as they were."""
    scripted_llm.script(Rule(reply='{"cause": "x"}'))
    ask = [{"role": "user", "content": "Why does x = '\ud800' fail? And '\ud83d\ude00'?"}]
    assert (await llm_client.complete(ask)).text == '{"cause": "x"}'
    assert await llm_client.complete_json(ask, SCHEMA) == {"cause": "x"}
    assert "".join([d async for d in llm_client.stream(ask + [{"role": "user", "content": "\udfff"}])])
    sent = [r.body["messages"] for r in scripted_llm.completions]
    assert [m["content"] for m in sent[0]] == ["Why does x = '\ufffd' fail? And '\U0001f600'?"]
    assert sent[2][-1]["content"] == "\ufffd" and ask[0]["content"].startswith("Why does x = '\ud800'")
