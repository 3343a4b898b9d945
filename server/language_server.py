"""The pygls server object: the state every feature shares, and text sync that feeds our snapshots directly.

pygls keeps its own copy of every document and applies each change to it line by line. Our document store already
holds the text (as bytes, with an incrementally updated tree), so the protocol subclass below hands open/change/close
straight to our handlers and skips pygls' copy: the keystroke path does the work once.
"""

from __future__ import annotations

import logging
from typing import Any

from lsprotocol import types
from pygls.exceptions import FeatureRequestError
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol, lsp_method

from . import log_forwarding
from .diagnostics import DiagnosticBoard
from .documents import DocumentStore
from .settings import Settings, SettingsProblem
from .version import __version__

log = logging.getLogger(__name__)

NAME = "metagpt-lsp"


class SnapshotProtocol(LanguageServerProtocol):
    """LSP protocol whose text sync goes to our document store only (see the module docstring)."""

    def _user_handler(self, method: str, params: Any):
        handler = self.fm.features.get(method)
        if handler is not None:
            yield handler, (params,), None

    @lsp_method(types.TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(self, params: types.DidOpenTextDocumentParams):
        yield from self._user_handler(types.TEXT_DOCUMENT_DID_OPEN, params)

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: types.DidChangeTextDocumentParams):
        yield from self._user_handler(types.TEXT_DOCUMENT_DID_CHANGE, params)

    @lsp_method(types.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(self, params: types.DidCloseTextDocumentParams):
        yield from self._user_handler(types.TEXT_DOCUMENT_DID_CLOSE, params)


class MetagptLanguageServer(LanguageServer):
    """The language server: open documents, their diagnostics, the user's settings."""

    def __init__(self) -> None:
        super().__init__(NAME, __version__, protocol_cls=SnapshotProtocol,
                         text_document_sync_kind=types.TextDocumentSyncKind.Incremental)
        self.documents = DocumentStore()
        self.diagnostics = DiagnosticBoard()
        self.settings = Settings()
        self.pull_diagnostics = False
        self.pending_problems: list[SettingsProblem] = []
        """Settings problems found before the client could be told (initialize comes before showMessage)."""
        self.editor_log = log_forwarding.EditorLogHandler(self.window_log_message)
        log_forwarding.attach_editor(self.editor_log)

    def tell_user(self, message: str, kind: types.MessageType = types.MessageType.Warning) -> None:
        """Say something the user should see (a popup) and keep it in the log too."""
        log.log(logging.ERROR if kind == types.MessageType.Error else logging.WARNING, "%s", message)
        if self.editor_log.connected:
            self.window_show_message(types.ShowMessageParams(type=kind, message=f"metagpt-lsp: {message}"))

    def report_settings_problems(self, problems: list[SettingsProblem]) -> None:
        if problems:
            self.tell_user("; ".join(str(problem) for problem in problems))

    def report_server_error(self, error: Exception, source: Any) -> None:
        log.error("internal error (%s): %s", getattr(source, "__name__", source), error)
        if source is not FeatureRequestError and self.editor_log.connected:
            self.window_show_message(types.ShowMessageParams(
                type=types.MessageType.Error,
                message=f"metagpt-lsp hit an internal error and carried on: {error}. Details are in its log.",
            ))
