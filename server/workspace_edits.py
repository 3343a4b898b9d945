"""Team results as LSP edits: versioned ``TextDocumentEdit``s, and only for the version they were computed for.

The team works in byte offsets of one snapshot. Converting them to LSP positions must use *that* snapshot (its
lines and its position encoding); and if the document has moved on since, the edit is dropped, never applied —
the user's newer text is never overwritten by an answer about older text.
"""

from __future__ import annotations

from lsprotocol import types

from metagpt_lsp.agents.edits import ByteEdit
from metagpt_lsp.agents.syntax import DocumentSnapshot

from .diagnostics import lsp_range


class StaleResult(Exception):
    """The document changed while the team worked: the result is for a version the editor no longer has."""


def workspace_edit(snapshot: DocumentSnapshot, current: DocumentSnapshot | None,
                   edits: tuple[ByteEdit, ...]) -> types.WorkspaceEdit:
    """A WorkspaceEdit holding one TextDocumentEdit stamped with ``snapshot.version``; StaleResult if outdated."""
    if current is None:
        raise StaleResult(f"{snapshot.uri} was closed while the team worked")
    if current.version != snapshot.version:
        raise StaleResult(f"{snapshot.uri} changed (version {snapshot.version} -> {current.version}) while the team "
                          "worked; the result was discarded — ask again")
    text_edits: list[types.TextEdit | types.AnnotatedTextEdit | types.SnippetTextEdit] = [
        types.TextEdit(range=lsp_range(snapshot, edit.start_byte, edit.end_byte), new_text=edit.new_text)
        for edit in sorted(edits, key=lambda edit: edit.start_byte)
    ]
    return types.WorkspaceEdit(document_changes=[types.TextDocumentEdit(
        text_document=types.OptionalVersionedTextDocumentIdentifier(uri=snapshot.uri, version=snapshot.version),
        edits=text_edits,
    )])
