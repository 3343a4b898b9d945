"""Inline completion (ghost text) through the real server against the scripted LLM: ``textDocument/inlineCompletion``
for a client that declares it, ``metagpt/inlineCompletion`` (same params, same answer) for Neovim 0.11 which does
not. The model is asked by fill-in-the-middle over ``/v1/completions`` (a raw, streamed prompt); a newer request or a
newer version cancels the one in flight, the HTTP stream behind it included; typing through an offer costs no
model call; an endpoint without ``/completions`` is asked through chat."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from metagpt_lsp.testing.lsp_support import WAIT_S, EditorDocument
from metagpt_lsp.testing.sample_module import STATS
from metagpt_lsp.testing.scripted_editor import FeatureClient, GitProject, apply_text_edits, scripted_session
from metagpt_lsp.testing.scripted_llm import Rule, ScriptedLlm

FIM = r"<\|fim_middle\|>$"  # a Qwen fill-in-the-middle prompt (the scripted model's name says nothing: Qwen's)
PARTIAL = STATS + "\n\ndef clamp(value, low, high):\n    "
BODY = "return max(low, min(value, high))"
REQUEST_CANCELLED = -32800
QUICK = {"inline": {"debounceMs": 0}}


def completion_params(doc: EditorDocument, index: int, invoked: bool = False) -> types.InlineCompletionParams:
    kind = types.InlineCompletionTriggerKind.Invoked if invoked else types.InlineCompletionTriggerKind.Automatic
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=doc.uri), position=doc.position(index),
        context=types.InlineCompletionContext(trigger_kind=kind))


def as_items(client: FeatureClient, result: Any) -> list[types.InlineCompletionItem]:
    if result is None:
        return []
    if isinstance(result, types.InlineCompletionList):
        return list(result.items)
    if isinstance(result, list):
        return list(result)
    # the fallback request's answer, which pygls hands over as named tuples (it knows no type for the method)
    return list(client.protocol._converter.structure(plain(result), types.InlineCompletionList).items)


def plain(value: Any) -> Any:
    if hasattr(value, "_asdict"):
        return {key: plain(item) for key, item in value._asdict().items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value


def applied(doc: EditorDocument, item: types.InlineCompletionItem) -> str:
    assert isinstance(item.insert_text, str) and item.range is not None
    return apply_text_edits(doc.text, [types.TextEdit(range=item.range, new_text=item.insert_text)])


async def ask(client: FeatureClient, doc: EditorDocument, index: int, invoked: bool = False) -> list:
    result = await asyncio.wait_for(client.text_document_inline_completion_async(
        completion_params(doc, index, invoked)), WAIT_S)
    return as_items(client, result)


@pytest.mark.parametrize("profile", ["visual-studio-code+inline", "neovim@v0.11.0"])
async def test_completion_at_the_cursor_for_both_kinds_of_client(profile: str, project: GitProject,
                                                                review_cache: Path, scripted_llm: ScriptedLlm):
    scripted_llm.script(Rule(BODY, prompt=FIM))
    async with scripted_session(profile, scripted_llm, project, review_cache, QUICK) as client:
        declares = profile.endswith("+inline")
        assert client.initialize_result.capabilities.inline_completion_provider is not None
        doc = client.track(EditorDocument(project.uri("stats.py"), PARTIAL))
        doc.open(client)
        params = completion_params(doc, len(doc.text))
        if declares:
            result = await asyncio.wait_for(client.text_document_inline_completion_async(params), WAIT_S)
        else:
            result = await asyncio.wait_for(client.protocol.send_request_async(
                "metagpt/inlineCompletion", client.protocol._converter.unstructure(params)), WAIT_S)
        (item,) = as_items(client, result)
        assert applied(doc, item).endswith(f"def clamp(value, low, high):\n    {BODY}")
        (request,) = scripted_llm.text_completions
        assert request.prompt.startswith("<|fim_prefix|>") and request.prompt.endswith(
            "def clamp(value, low, high):\n    <|fim_suffix|><|fim_middle|>")
        assert request.body["stream"] is True and request.body["max_tokens"] == 128
        assert "<|endoftext|>" in request.body["stop"] and not scripted_llm.completions, "chat was asked too"


async def test_a_newer_request_cancels_the_older_one(project: GitProject, review_cache: Path,
                                                     scripted_llm: ScriptedLlm):
    scripted_llm.script(Rule(fault="hang", prompt=FIM, times=1), Rule(BODY, prompt=FIM))
    async with scripted_session("visual-studio-code+inline", scripted_llm, project, review_cache) as client:
        doc = client.track(EditorDocument(project.uri("stats.py"), PARTIAL))
        doc.open(client)
        params = completion_params(doc, len(doc.text))

        first = asyncio.ensure_future(client.text_document_inline_completion_async(params))
        second = asyncio.ensure_future(client.text_document_inline_completion_async(params))
        (hanging,) = await asyncio.wait_for(scripted_llm.wait_for_requests(1), WAIT_S)
        third = await asyncio.wait_for(client.text_document_inline_completion_async(params), WAIT_S)

        assert await cancelled_or_empty(client, first), "the first request, still in its debounce, was not cancelled"
        assert await cancelled_or_empty(client, second)
        await asyncio.wait_for(hanging.disconnected.wait(), WAIT_S)  # the second's stream was aborted
        assert len(scripted_llm.text_completions) == 2, "the first request reached the model"
        (item,) = as_items(client, third)
        assert applied(doc, item).endswith(BODY)


async def test_a_newer_keystroke_cancels_the_stream_in_flight(project: GitProject, review_cache: Path,
                                                              scripted_llm: ScriptedLlm):
    scripted_llm.script(Rule(fault="hang", prompt=FIM))
    async with scripted_session("visual-studio-code+inline", scripted_llm, project, review_cache, QUICK) as client:
        doc = client.track(EditorDocument(project.uri("stats.py"), PARTIAL))
        doc.open(client)
        pending = asyncio.ensure_future(client.text_document_inline_completion_async(
            completion_params(doc, len(doc.text))))
        (hanging,) = await asyncio.wait_for(scripted_llm.wait_for_requests(1), WAIT_S)
        assert hanging.body["stream"] is True
        doc.insert(client, len(doc.text), "r")
        assert await cancelled_or_empty(client, pending)
        await asyncio.wait_for(hanging.disconnected.wait(), WAIT_S)


async def cancelled_or_empty(client: FeatureClient, pending: asyncio.Future) -> bool:
    """Whether a request ended without anything to show: cancelled by the server, or an empty answer."""
    try:
        result = await asyncio.wait_for(pending, WAIT_S)
    except JsonRpcException as error:
        return error.code == REQUEST_CANCELLED
    return as_items(client, result) == []


async def test_typing_through_an_offer_needs_no_model_call(project: GitProject, review_cache: Path,
                                                          scripted_llm: ScriptedLlm):
    scripted_llm.script(Rule(BODY, prompt=FIM))
    async with scripted_session("visual-studio-code+inline", scripted_llm, project, review_cache, QUICK) as client:
        doc = client.track(EditorDocument(project.uri("stats.py"), PARTIAL))
        doc.open(client)
        (item,) = await ask(client, doc, len(doc.text))
        for typed in "return max":
            doc.insert(client, len(doc.text), typed)
            (item,) = await ask(client, doc, len(doc.text))
            assert applied(doc, item).endswith(BODY) and item.insert_text == BODY[len(doc.text) - len(PARTIAL):]
        assert len(scripted_llm.text_completions) == 1, "typing through the offer asked the model again"


async def test_mid_line_one_line_over_the_auto_closed_bracket(project: GitProject, review_cache: Path,
                                                              scripted_llm: ScriptedLlm):
    scripted_llm.script(Rule("5, 0, 10)\nprint(limited)\n", prompt=FIM))
    text = STATS + "\n\nlimited = clamp()\n"
    async with scripted_session("visual-studio-code+inline", scripted_llm, project, review_cache, QUICK) as client:
        doc = client.track(EditorDocument(project.uri("stats.py"), text))
        doc.open(client)
        (item,) = await ask(client, doc, text.index("clamp(") + len("clamp("))
        assert applied(doc, item).endswith("\nlimited = clamp(5, 0, 10)\n"), "one line, the ) replaced not doubled"
        assert scripted_llm.text_completions[0].body["stop"][0] == "\n"


async def test_a_block_opening_line_gets_lines_up_to_the_dedent(project: GitProject, review_cache: Path,
                                                                scripted_llm: ScriptedLlm):
    reply = "\n    low, high = min(low, high), max(low, high)\n    return max(low, min(value, high))\n\nprint(1)\n"
    scripted_llm.script(Rule(reply, prompt=FIM))
    text = STATS + "\n\ndef clamp(value, low, high):"
    async with scripted_session("visual-studio-code+inline", scripted_llm, project, review_cache, QUICK) as client:
        doc = client.track(EditorDocument(project.uri("stats.py"), text))
        doc.open(client)
        (item,) = await ask(client, doc, len(text))
        assert item.insert_text == ("\n    low, high = min(low, high), max(low, high)\n"
                                    "    return max(low, min(value, high))")


async def test_no_automatic_request_with_text_right_of_the_cursor(project: GitProject, review_cache: Path,
                                                                  scripted_llm: ScriptedLlm):
    scripted_llm.script(Rule("x", prompt=FIM))
    text = STATS + "\n\nlimited = clamp(value, lowest_value)\n"
    async with scripted_session("visual-studio-code+inline", scripted_llm, project, review_cache, QUICK) as client:
        doc = client.track(EditorDocument(project.uri("stats.py"), text))
        doc.open(client)
        assert await ask(client, doc, text.index("clamp(") + len("clamp(")) == []
        assert not scripted_llm.text_completions


async def test_an_offer_that_would_add_a_syntax_error_is_not_shown(project: GitProject, review_cache: Path,
                                                                   scripted_llm: ScriptedLlm):
    scripted_llm.script(Rule("return max(low,, min(value high)))", prompt=FIM))
    async with scripted_session("visual-studio-code+inline", scripted_llm, project, review_cache, QUICK) as client:
        doc = client.track(EditorDocument(project.uri("stats.py"), PARTIAL))
        doc.open(client)
        assert await ask(client, doc, len(doc.text)) == []
        assert len(scripted_llm.text_completions) == 1


async def test_an_endpoint_without_completions_is_asked_through_chat(project: GitProject, review_cache: Path,
                                                                    scripted_llm: ScriptedLlm):
    scripted_llm.completions_endpoint = False
    scripted_llm.script(Rule(f"```python\n{BODY}\n```", last_user="<FILL_HERE>"))
    async with scripted_session("visual-studio-code+inline", scripted_llm, project, review_cache, QUICK) as client:
        doc = client.track(EditorDocument(project.uri("stats.py"), PARTIAL))
        doc.open(client)
        (item,) = await ask(client, doc, len(doc.text))
        assert applied(doc, item).endswith(BODY)
        doc.insert(client, len(doc.text), "\n\n\n")
        await ask(client, doc, len(doc.text))
        assert len(scripted_llm.text_completions) == 1 and len(scripted_llm.completions) == 2, \
            "the 404 on /completions was not remembered"
        assert "def clamp(value, low, high):\n    <FILL_HERE>" in scripted_llm.completions[0].last_user_message


# -- text that is not ASCII -------------------------------------------------------------------------------------------

CLAMP = "def clamp(value, low, high):\n    "


async def test_completion_in_a_long_line_of_cjk_and_emoji_text(project: GitProject, review_cache: Path,
                                                               scripted_llm: ScriptedLlm):
    """The token budget cuts the window inside one long line of CJK and emoji (the user asked, inside a string):
    the prompt shows whole characters, the end of the text before the cursor and the start of the text after it."""
    prefix = CLAMP + "note = '" + "统计工具🙂合计" * 400
    suffix = "平均值📊方差" * 400 + "'\n"
    scripted_llm.script(Rule("总和", prompt=FIM))
    options = {"inline": {"debounceMs": 0, "maxPromptTokens": 400}}
    async with scripted_session("visual-studio-code+inline", scripted_llm, project, review_cache, options) as client:
        doc = client.track(EditorDocument(project.uri("report.py"), prefix + suffix))
        doc.open(client)
        (item,) = await ask(client, doc, len(prefix), invoked=True)
        assert applied(doc, item) == prefix + "总和" + suffix
        (request,) = scripted_llm.text_completions
        shown = request.prompt.removeprefix("<|fim_prefix|>").removesuffix("<|fim_middle|>")
        before, after = shown.split("<|fim_suffix|>")
        assert prefix.endswith(before) and suffix.startswith(after) and "\ufffd" not in request.prompt
        assert len(before) == int(400 * 3.2) - len(after) and len(after) == int(400 * 3.2) // 4


async def test_a_lone_surrogate_in_a_small_file_leaves_completion_working(project: GitProject, review_cache: Path,
                                                                        scripted_llm: ScriptedLlm):
    """An editor may send a lone surrogate (a JSON "\\ud800"): the document keeps it, the model sees U+FFFD."""
    prefix = 'NOTE = "坏字符 \ud800 在此"\n\n\n' + CLAMP
    scripted_llm.script(Rule(BODY, prompt=FIM))
    async with scripted_session("visual-studio-code+inline", scripted_llm, project, review_cache, QUICK) as client:
        doc = client.track(EditorDocument(project.uri("notes.py"), prefix))
        doc.open(client)
        (item,) = await ask(client, doc, len(prefix))
        assert applied(doc, item) == prefix + BODY
        (request,) = scripted_llm.text_completions
        assert 'NOTE = "坏字符 \ufffd 在此"' in request.prompt and f"{CLAMP}<|fim_suffix|>" in request.prompt
