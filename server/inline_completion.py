"""Inline code generation (ghost text): ``textDocument/inlineCompletion`` (LSP 3.18) and a fallback request.

Clients that declare ``textDocument.inlineCompletion`` get the standard request. Others (Neovim 0.11) can send
``metagpt/inlineCompletion`` with the same parameters and get the same ``InlineCompletionList``. Each request for a
document cancels the previous one (the debounce is that cancellation plus a short wait before any model is asked),
and a newer document version cancels it too. The generated code is checked like any edit: inserted at the cursor,
the document must not gain syntax errors — otherwise nothing is shown.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from lsprotocol import types

from metagpt_lsp.agents.team import generation_site
from metagpt_lsp.agents.syntax import decode
from metagpt_lsp.agents.syntax import TextPosition

log = logging.getLogger(__name__)

FALLBACK_METHOD = "metagpt/inlineCompletion"


def client_supports_inline(capabilities: types.ClientCapabilities) -> bool:
    text_document = capabilities.text_document
    return bool(text_document and text_document.inline_completion is not None)


async def inline_completion(server: Any, params: types.InlineCompletionParams) -> types.InlineCompletionList | None:
    settings = server.settings.inline
    uri = params.text_document.uri
    snapshot = server.documents.get(uri)
    if not settings.enabled or snapshot is None or snapshot.tree is None:
        return None
    server.document_tasks.track(uri, "inline")
    await asyncio.sleep(settings.debounce_ms / 1000)  # a newer keystroke cancels this task while it waits
    cursor = snapshot.offset_at(TextPosition(params.position.line, params.position.character))
    request = generation_site(snapshot, cursor, allow_cursor=True)
    if request is None:
        return None
    team = await server.team_host.team()
    result = await team.generate(request, deadline_s=settings.deadline_s, max_rounds=1)
    current = server.documents.get(uri)
    if not result.ok or current is None or current.version != snapshot.version:
        log.info("inline completion for %s: nothing to show (%s)", uri, result.reason or "document changed")
        return types.InlineCompletionList(items=[])
    new_source = snapshot.source
    for edit in sorted(result.edits, key=lambda e: e.start_byte, reverse=True):
        new_source = new_source[:edit.start_byte] + edit.new_text.encode("utf-8", "surrogatepass") + \
            new_source[edit.end_byte:]
    start = min(edit.start_byte for edit in result.edits)
    old_end = max(edit.end_byte for edit in result.edits)
    new_end = old_end + len(new_source) - len(snapshot.source)
    text = decode(new_source[start:new_end])
    range_start = snapshot.position_at(start)
    range_end = snapshot.position_at(old_end)
    return types.InlineCompletionList(items=[types.InlineCompletionItem(
        insert_text=text,
        range=types.Range(start=types.Position(range_start.line, range_start.character),
                          end=types.Position(range_end.line, range_end.character)),
    )])


async def fallback_inline_completion(server: Any, raw: Any) -> Any:
    """``metagpt/inlineCompletion``: the same answer for clients without the 3.18 request."""
    params = server.converter.structure(_plain(raw), types.InlineCompletionParams)
    result = await inline_completion(server, params)
    return server.converter.unstructure(result) if result is not None else None


def _plain(value: Any) -> Any:
    """JSON data back from the named tuples pygls makes of a custom request's params (``Object(textDocument=...)``)."""
    if hasattr(value, "_asdict"):
        return {key: _plain(item) for key, item in value._asdict().items()}
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value
