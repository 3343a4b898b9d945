"""Open, change, close: keep the snapshots current and publish instant syntax diagnostics for each version."""

from __future__ import annotations

import logging

from lsprotocol import types

from . import review_on_save
from .diagnostics import syntax_diagnostics
from .documents import SyncProblem
from .language_server import MetagptLanguageServer
from .settings import may_run_code

log = logging.getLogger(__name__)
PRODUCER = "syntax"


def did_open(server: MetagptLanguageServer, params: types.DidOpenTextDocumentParams) -> None:
    snapshot, problems = server.documents.open(params.text_document)
    _log(problems)
    if snapshot.too_large_to_parse:
        server.tell_user(problems[-1].message if problems else "file too large for syntax checks",
                         types.MessageType.Info)
    refresh_syntax(server, snapshot.uri)


def did_change(server: MetagptLanguageServer, params: types.DidChangeTextDocumentParams) -> None:
    document = params.text_document
    server.document_tasks.cancel(document.uri)  # reviews, fixes and completions of the old text are moot
    previous_review = server.diagnostics.producer_diagnostics(document.uri, review_on_save.PRODUCER)
    snapshot, problems = server.documents.change(document.uri, document.version, params.content_changes)
    _log(problems)
    if snapshot is not None:
        if previous_review:
            server.diagnostics.update(snapshot.uri, snapshot.version, review_on_save.PRODUCER,
                                      review_on_save.carry_forward(snapshot, previous_review))
        refresh_syntax(server, snapshot.uri)


def did_save(server: MetagptLanguageServer, params: types.DidSaveTextDocumentParams) -> None:
    """A save starts a review of what changed since HEAD (cancelling the review in flight for the document)."""
    uri = params.text_document.uri
    if uri in server.documents and server.settings.review.on_save:
        server.document_tasks.start(uri, "review", review_on_save.review_document(
            server, uri, may_run_code=may_run_code(server.settings, on_save=True)))


def did_close(server: MetagptLanguageServer, params: types.DidCloseTextDocumentParams) -> None:
    uri = params.text_document.uri
    server.document_tasks.cancel(uri)
    _log(server.documents.close(uri))
    server.diagnostics.forget(uri)
    if not server.pull_diagnostics:
        server.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))


def refresh_syntax(server: MetagptLanguageServer, uri: str) -> None:
    """Recompute the syntax diagnostics of a document's current snapshot and push them if the client wants pushes."""
    snapshot = server.documents.get(uri)
    if snapshot is None:
        return
    shown_version = server.diagnostics.version(uri)
    if shown_version is not None and snapshot.version < shown_version:
        server.diagnostics.forget(uri)  # the editor's version number went backwards: its text is still the truth
    diagnostics = syntax_diagnostics(snapshot) if server.settings.syntax.enabled else []
    server.diagnostics.update(uri, snapshot.version, PRODUCER, diagnostics)
    publish(server, uri)


def refresh_all(server: MetagptLanguageServer) -> None:
    """Recompute every open document's syntax diagnostics (after a settings change) and let pull clients know."""
    for uri in server.documents.uris():
        refresh_syntax(server, uri)
    workspace = server.client_capabilities.workspace
    if server.pull_diagnostics and workspace and workspace.diagnostics and workspace.diagnostics.refresh_support:
        server.workspace_diagnostic_refresh(None)


def publish(server: MetagptLanguageServer, uri: str) -> None:
    if not server.pull_diagnostics:
        server.text_document_publish_diagnostics(server.diagnostics.publish_params(uri))


def pull(server: MetagptLanguageServer, params: types.DocumentDiagnosticParams) -> types.DocumentDiagnosticReport:
    uri = params.text_document.uri
    if uri not in server.documents:
        return types.RelatedFullDocumentDiagnosticReport(items=[])
    return server.diagnostics.pull_report(uri, params.previous_result_id)


def _log(problems: list[SyncProblem]) -> None:
    for problem in problems:
        log.warning("%s: %s", problem.uri, problem.message)
