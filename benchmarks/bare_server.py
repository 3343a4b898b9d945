"""The protocol floor for the keystroke benchmark: a bare pygls server that keeps documents in pygls' own workspace
and answers every open and change with an empty ``publishDiagnostics`` for that version.

It does what any pygls server must do per keystroke — read the frame, decode the JSON, apply the change to the
document text, encode and write one notification — and nothing else. metagpt-lsp does the same plus its snapshot,
incremental tree-sitter reparse and syntax walk; the ratio of the two latencies is the cost of that work.

    python benchmarks/bare_server.py        # serves LSP over stdio
"""

from __future__ import annotations

from lsprotocol import types
from pygls.lsp.server import LanguageServer

server = LanguageServer("bare-pygls", "1", text_document_sync_kind=types.TextDocumentSyncKind.Incremental)


def _publish_empty(ls: LanguageServer, uri: str) -> None:
    document = ls.workspace.get_text_document(uri)
    ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
        uri=uri, diagnostics=[], version=document.version))


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
def _did_open(ls: LanguageServer, params: types.DidOpenTextDocumentParams) -> None:
    _publish_empty(ls, params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def _did_change(ls: LanguageServer, params: types.DidChangeTextDocumentParams) -> None:
    _publish_empty(ls, params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def _did_close(ls: LanguageServer, params: types.DidCloseTextDocumentParams) -> None:
    ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=params.text_document.uri, diagnostics=[]))


if __name__ == "__main__":
    server.start_io()
