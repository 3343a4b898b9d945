"""Inline completion (ghost text) through the real server against the scripted LLM: ``textDocument/inlineCompletion``
for a client that declares it, ``metagpt/inlineCompletion`` (same params, same answer) for Neovim 0.11 which does
not; a newer request or a newer version cancels the one in flight, the LLM call behind it included."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from lsp_support import WAIT_S, EditorDocument
from sample_module import STATS
from scripted_editor import FeatureClient, GitProject, apply_text_edits, scripted_session
from scripted_llm import Rule, ScriptedLlm

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
