"""The pygls server object: the state every feature shares, and text sync that feeds our snapshots directly.

pygls keeps its own copy of every document and applies each change to it line by line. Our document store already
holds the text (as bytes, with an incrementally updated tree), so the protocol subclass below hands open/change/close
straight to our handlers and skips pygls' copy: the keystroke path does the work once. Its base class
(:mod:`.json_rpc_rules`) holds pygls to JSON-RPC 2.0 and the LSP lifecycle: every message that cannot be used gets a
clear log line and the error answer it is owed (:mod:`.malformed_input`).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from lsprotocol import types
from pygls.exceptions import FeatureRequestError, JsonRpcContentModified, JsonRpcMethodNotFound
from pygls.lsp.server import LanguageServer
from pygls.protocol import lsp_method

from . import log_forwarding, malformed_input
from .command_work import CommandWork
from .diagnostics import DiagnosticBoard
from .document_tasks import DocumentTasks
from .documents import DocumentStore
from .json_rpc_rules import StrictJsonRpcProtocol
from .progress_reporting import ProgressRegistry
from .settings import Settings, SettingsProblem
from .team_host import TeamHost
from .version import __version__

log = logging.getLogger(__name__)

NAME = "metagpt-lsp"


class SnapshotProtocol(StrictJsonRpcProtocol):
    """LSP protocol whose text sync goes to our document store only, held to JSON-RPC 2.0 and the LSP lifecycle."""

    def _user_handler(self, method: str, params: Any):
        handler = self.fm.features.get(method)
        if handler is not None:
            yield handler, (params,), None

    def _handle_cancel_notification(self, msg_id: Any) -> None:
        """``$/cancelRequest`` also reaches the work of a command that already answered (:mod:`.command_work`)."""
        work = getattr(self._server, "command_work", None)
        if work is not None and work.cancel_request(msg_id):
            return
        super()._handle_cancel_notification(msg_id)

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
        self.team_host = TeamHost(self.tell_user)
        self.document_tasks = DocumentTasks()
        self.progress_registry = ProgressRegistry()
        self.command_work = CommandWork()
        self.editor_log = log_forwarding.EditorLogHandler(self.window_log_message)
        log_forwarding.attach_editor(self.editor_log)

    @property
    def converter(self) -> Any:
        """pygls' cattrs converter, for turning JSON from commands and custom requests into lsprotocol types."""
        return self.protocol._converter

    def tell_user(self, message: str, kind: types.MessageType = types.MessageType.Warning) -> None:
        """Say something the user should see (a popup) and keep it in the log too."""
        levels = {types.MessageType.Error: logging.ERROR, types.MessageType.Warning: logging.WARNING}
        log.log(levels.get(kind, logging.INFO), "%s", message)
        if self.editor_log.connected:
            self.window_show_message(types.ShowMessageParams(type=kind, message=f"metagpt-lsp: {message}"))

    def report_settings_problems(self, problems: list[SettingsProblem]) -> None:
        if problems:
            self.tell_user("; ".join(str(problem) for problem in problems))

    def report_server_error(self, error: Exception, source: Any) -> None:
        unusable = _unusable(error)
        if unusable is not None:
            if unusable.answer is not None:
                self.protocol._send_data(unusable.answer)
            log.error("%s", unusable)
            return
        if isinstance(error, JsonRpcContentModified):  # the answer owed when the document changed under a request
            log.info("%s", error)
            return
        if isinstance(error, JsonRpcMethodNotFound):
            log.warning("the editor asked for something this server does not provide (%s)", error.message)
            return
        log.error("internal error (%s): %s", getattr(source, "__name__", source), error)
        if source is not FeatureRequestError and self.editor_log.connected:
            self.window_show_message(types.ShowMessageParams(
                type=types.MessageType.Error,
                message=f"metagpt-lsp hit an internal error and carried on: {error}. Details are in its log.",
            ))


def _unusable(error: Exception) -> malformed_input.UnusableMessage | None:
    """The wording of a message pygls could not read, or None for an error of our own."""
    if isinstance(error, malformed_input.UnusableMessage):
        return error
    if isinstance(error, json.JSONDecodeError):
        return malformed_input.not_json(error)
    if isinstance(error, UnicodeDecodeError):
        return malformed_input.not_utf8(error)
    if isinstance(error, RecursionError) or (isinstance(error, ValueError) and "string conversion" in str(error)):
        return malformed_input.unreadable_json(error)  # valid JSON that Python's json module cannot read
    return None
