"""Inline completion (ghost text) through the real server against the scripted LLM: ``textDocument/inlineCompletion``
for a client that declares it, ``metagpt/inlineCompletion`` (same params, same answer) for Neovim 0.11 which does
not; a newer request or a newer version cancels the one in flight, the LLM call behind it included."""

from __future__ import annotations

import ast
import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from metagpt_lsp.testing.lsp_support import WAIT_S, EditorDocument
from metagpt_lsp.testing.sample_module import STATS
from metagpt_lsp.testing.scripted_editor import FeatureClient, GitProject, apply_text_edits, scripted_session
from metagpt_lsp.testing.scripted_llm import Rule, ScriptedLlm

ASKS_CURSOR = "Write the code that belongs at <CURSOR>"
PARTIAL = STATS + "\n\ndef clamp(value, low, high):\n    "
BODY = "return max(low, min(value, high))"
REQUEST_CANCELLED = -32800


def completion_params(doc: EditorDocument, index: int) -> types.InlineCompletionParams:
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=doc.uri), position=doc.position(index),
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic))


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


@pytest.mark.parametrize("profile", ["visual-studio-code+inline", "neovim@v0.11.0"])
async def test_completion_at_the_cursor_for_both_kinds_of_client(profile: str, project: GitProject,
                                                                review_cache: Path, scripted_llm: ScriptedLlm):
    scripted_llm.script(Rule(f"```python\n{BODY}\n```", last_user=ASKS_CURSOR))
    options = {"inline": {"debounceMs": 0}}
    async with scripted_session(profile, scripted_llm, project, review_cache, options) as client:
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
        completed = applied(doc, item)
        ast.parse(completed)
        assert completed.endswith(f"def clamp(value, low, high):\n    {BODY}")
        (prompt,) = [r.last_user_message for r in scripted_llm.completions]
        assert "def clamp(value, low, high):\n    <CURSOR>" in prompt


async def test_a_newer_request_cancels_the_older_one(project: GitProject, review_cache: Path,
                                                     scripted_llm: ScriptedLlm):
    scripted_llm.script(Rule(fault="hang", last_user=ASKS_CURSOR, times=1),
                        Rule(f"```python\n{BODY}\n```", last_user=ASKS_CURSOR))
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
        await asyncio.wait_for(hanging.disconnected.wait(), WAIT_S)  # the second's LLM call was aborted
        assert len(scripted_llm.completions) == 2, "the first request reached the model"
        (item,) = as_items(client, third)
        assert applied(doc, item).endswith(BODY)


async def test_a_newer_version_cancels_the_completion_in_flight(project: GitProject, review_cache: Path,
                                                                scripted_llm: ScriptedLlm):
    scripted_llm.script(Rule(fault="hang", last_user=ASKS_CURSOR))
    options = {"inline": {"debounceMs": 0}}
    async with scripted_session("visual-studio-code+inline", scripted_llm, project, review_cache, options) as client:
        doc = client.track(EditorDocument(project.uri("stats.py"), PARTIAL))
        doc.open(client)
        pending = asyncio.ensure_future(client.text_document_inline_completion_async(
            completion_params(doc, len(doc.text))))
        (hanging,) = await asyncio.wait_for(scripted_llm.wait_for_requests(1), WAIT_S)
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


# -- text that is not ASCII -------------------------------------------------------------------------------------------

WINDOW_BEFORE, WINDOW_AFTER = 1500, 500  # the bytes of the file around the cursor that the prompt shows
CLAMP = "def clamp(value, low, high):\n    "


def cjk_function(number: int) -> str:
    return (f'def 合计_{number}(数据):\n    """第{number}组数据的总和 📊，空列表为零。"""\n'
            f'    return sum(数据)  # 求和 ✅ 完成\n\n\n')


def inside_a_character(data: bytes, offset: int) -> bool:
    return 0x80 <= data[offset] <= 0xBF  # a UTF-8 continuation byte


def shown_window(prompt: str) -> tuple[str, str]:
    """The text the prompt shows before and after the cursor (the code block the question is about)."""
    block = re.search(r"(?s)at <CURSOR> in:\n```python\n(.*)\n```\nReply with only", prompt)
    assert block is not None, f"no code block with the cursor in {prompt!r}"
    before, after = block.group(1).split("<CURSOR>")
    return before, after


async def test_completion_in_a_large_file_of_cjk_and_emoji_text(project: GitProject, review_cache: Path,
                                                                scripted_llm: ScriptedLlm):
    """The cursor is placed so that a window cut by bytes would start and end inside characters: the prompt shows
    whole characters (about the usual number of bytes) and the completion arrives."""
    head = '"""统计工具：合计、平均值与方差 🙂。"""\n\n\n' + "".join(cjk_function(n) for n in range(12))
    tail = "".join(cjk_function(n) for n in range(12, 24))
    prefixes = (f"{head}{'#' * padding}\n{CLAMP}" for padding in range(40))
    prefix = next(text for text in prefixes if inside_a_character(text.encode(), -WINDOW_BEFORE))
    suffixes = (f"\n\n\n{'#' * padding}\n{tail}" for padding in range(40))
    suffix = next(text for text in suffixes if inside_a_character(text.encode(), WINDOW_AFTER))
    scripted_llm.script(Rule(f"```python\n{BODY}\n```", last_user=ASKS_CURSOR))
    async with scripted_session("visual-studio-code+inline", scripted_llm, project, review_cache,
                                {"inline": {"debounceMs": 0}}) as client:
        doc = client.track(EditorDocument(project.uri("report.py"), prefix + suffix))
        doc.open(client)
        result = await asyncio.wait_for(client.text_document_inline_completion_async(
            completion_params(doc, len(prefix))), WAIT_S)
        (item,) = as_items(client, result)
        assert applied(doc, item) == prefix + BODY + suffix
        (prompt,) = [r.last_user_message for r in scripted_llm.completions]
        before, after = shown_window(prompt)
        assert prefix.endswith(before) and suffix.startswith(after) and "\ufffd" not in prompt
        assert abs(len(before.encode()) - WINDOW_BEFORE) < 4 and abs(len(after.encode()) - WINDOW_AFTER) < 4


async def test_a_lone_surrogate_in_a_small_file_leaves_completion_working(project: GitProject, review_cache: Path,
                                                                        scripted_llm: ScriptedLlm):
    """An editor may send a lone surrogate (a JSON "\\ud800"): the document keeps it, the model sees U+FFFD."""
    prefix = 'NOTE = "坏字符 \ud800 在此"\n\n\n' + CLAMP
    scripted_llm.script(Rule(f"```python\n{BODY}\n```", last_user=ASKS_CURSOR))
    async with scripted_session("visual-studio-code+inline", scripted_llm, project, review_cache,
                                {"inline": {"debounceMs": 0}}) as client:
        doc = client.track(EditorDocument(project.uri("notes.py"), prefix))
        doc.open(client)
        result = await asyncio.wait_for(client.text_document_inline_completion_async(
            completion_params(doc, len(prefix))), WAIT_S)
        (item,) = as_items(client, result)
        assert applied(doc, item) == prefix + BODY
        (prompt,) = [r.last_user_message for r in scripted_llm.completions]
        assert 'NOTE = "坏字符 \ufffd 在此"' in prompt and f"{CLAMP}<CURSOR>" in prompt
