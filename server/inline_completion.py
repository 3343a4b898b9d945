"""Inline code generation (ghost text): ``textDocument/inlineCompletion`` (LSP 3.18) and a fallback request.

Clients that declare ``textDocument.inlineCompletion`` get the standard request. Others (Neovim 0.11) can send
``metagpt/inlineCompletion`` with the same parameters and get the same ``InlineCompletionList``. The work is
:mod:`metagpt_lsp.agents.ghost_text`'s (fill-in-the-middle, filters, cache, type-through); this module turns a
request into a cursor and an offer into an item. A remembered or typed-through offer is answered at once; only a
model call waits for the debounce. Each request for a document cancels the previous one, and a newer document
version cancels it too — the HTTP stream to the model included.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any

from lsprotocol import types

from metagpt_lsp.agents.ghost_text import GhostRequest, GhostResult, GhostText, GhostTextOptions, WindowOptions
from metagpt_lsp.agents.llm import LlmError
from metagpt_lsp.agents.syntax import DocumentSnapshot, TextPosition

log = logging.getLogger(__name__)

FALLBACK_METHOD = "metagpt/inlineCompletion"
_ENGINES: weakref.WeakKeyDictionary[Any, GhostText] = weakref.WeakKeyDictionary()  # one per LLM client


def client_supports_inline(capabilities: types.ClientCapabilities) -> bool:
    text_document = capabilities.text_document
    return bool(text_document and text_document.inline_completion is not None)


def ghost_text_options(settings: Any) -> GhostTextOptions:
    """The pipeline's options from the ``inline`` settings."""
    window = WindowOptions(settings.prefix_lines, settings.suffix_lines, settings.max_prompt_tokens)
    return GhostTextOptions(window=window, fim_template=settings.fim_template, max_tokens=settings.max_tokens,
                            single_line_max_tokens=min(48, settings.max_tokens))


def ghost_text_for(llm: Any, settings: Any) -> GhostText:
    """The ghost-text pipeline of an LLM client (its cache lives as long as the client), with current options."""
    engine = _ENGINES.get(llm)
    if engine is None:
        engine = _ENGINES[llm] = GhostText(llm, ghost_text_options(settings))
    else:
        engine.configure(ghost_text_options(settings))
    return engine


async def inline_completion(server: Any, params: types.InlineCompletionParams) -> types.InlineCompletionList | None:
    settings = server.settings.inline
    uri = params.text_document.uri
    snapshot = server.documents.get(uri)
    if not settings.enabled or snapshot is None:
        return None
    server.document_tasks.track(uri, "inline")
    cursor = snapshot.offset_at(TextPosition(params.position.line, params.position.character))
    others = tuple(doc for other in server.documents.uris() if other != uri
                   and (doc := server.documents.get(other)) is not None)
    explicit = params.context.trigger_kind == types.InlineCompletionTriggerKind.Invoked
    request = GhostRequest(snapshot, cursor, others, explicit)
    team = await server.team_host.team()
    engine = ghost_text_for(team.llm, settings)
    result = engine.cached(request)
    if result is None:
        await asyncio.sleep(settings.debounce_ms / 1000)  # a newer keystroke cancels this task while it waits
        try:
            result = await asyncio.wait_for(engine.offer(request), settings.deadline_s)
        except TimeoutError:
            result = GhostResult(None, f"no offer within inline.deadlineS ({settings.deadline_s:g} s)")
        except LlmError as error:
            result = GhostResult(None, str(error))
    current = server.documents.get(uri)
    if result.offer is None or current is None or current.version != snapshot.version:
        log.info("inline completion for %s: nothing to show (%s)", uri, result.reason or "document changed")
        return types.InlineCompletionList(items=[])
    return types.InlineCompletionList(items=[_item(snapshot, cursor, result.offer.text, result.offer.replace_chars)])


def _item(snapshot: DocumentSnapshot, cursor: int, text: str, replace_chars: int) -> types.InlineCompletionItem:
    """The offer as an item: inserted at the cursor, over the ``replace_chars`` characters right of it."""
    rest = snapshot.source[cursor:].split(b"\n", 1)[0].decode("utf-8", "surrogatepass")
    end = cursor + len(rest[:replace_chars].encode("utf-8", "surrogatepass"))
    start_position, end_position = snapshot.position_at(cursor), snapshot.position_at(end)
    return types.InlineCompletionItem(
        insert_text=text,
        range=types.Range(start=types.Position(start_position.line, start_position.character),
                          end=types.Position(end_position.line, end_position.character)))


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
