"""Diagnostics per document, from several producers (syntax now, review later), stamped with a version.

Each producer owns one named set per document. A set computed for an older version than the document's current one
is dropped, never shown. The merged list reaches the editor either pushed (``textDocument/publishDiagnostics``) or
pulled (``textDocument/diagnostic`` with result ids and "unchanged" reports) — pull when the client declares support
for it, push otherwise, never both for the same client.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from lsprotocol import types

from metagpt_lsp.agents.syntax import DocumentSnapshot, syntax_problems

SOURCE = "metagpt-lsp"


def lsp_range(snapshot: DocumentSnapshot, start_byte: int, end_byte: int) -> types.Range:
    start = snapshot.position_at(start_byte)
    end = snapshot.position_at(end_byte)
    return types.Range(
        start=types.Position(line=start.line, character=start.character),
        end=types.Position(line=end.line, character=end.character),
    )


def syntax_diagnostics(snapshot: DocumentSnapshot) -> list[types.Diagnostic]:
    """Syntax errors of a snapshot as LSP diagnostics — no LLM, cheap enough for every keystroke."""
    return [
        types.Diagnostic(
            range=lsp_range(snapshot, problem.start_byte, problem.end_byte),
            message=problem.message,
            severity=types.DiagnosticSeverity.Error,
            source=SOURCE,
            code="syntax",
        )
        for problem in syntax_problems(snapshot.tree, snapshot.source)
    ]


@dataclass
class _DocumentDiagnostics:
    version: int
    sets: dict[str, list[types.Diagnostic]] = field(default_factory=dict)
    generation: int = 0

    def merged(self) -> list[types.Diagnostic]:
        return [diagnostic for name in sorted(self.sets) for diagnostic in self.sets[name]]


class DiagnosticBoard:
    """The diagnostics of every open document, by producer, for the document's current version."""

    def __init__(self) -> None:
        self._documents: dict[str, _DocumentDiagnostics] = {}
        self._generations = itertools.count(1)

    def update(self, uri: str, version: int, producer: str, diagnostics: list[types.Diagnostic]) -> bool:
        """Record ``producer``'s diagnostics for ``version``. False (and nothing kept) when the version is stale."""
        entry = self._documents.get(uri)
        if entry is None or version > entry.version:
            entry = self._documents[uri] = _DocumentDiagnostics(version)
        elif version < entry.version:
            return False
        entry.sets[producer] = diagnostics
        entry.generation = next(self._generations)
        return True

    def version(self, uri: str) -> int | None:
        entry = self._documents.get(uri)
        return entry.version if entry else None

    def producer_diagnostics(self, uri: str, producer: str) -> list[types.Diagnostic]:
        """One producer's diagnostics for the document's current version."""
        entry = self._documents.get(uri)
        return list(entry.sets.get(producer, [])) if entry else []

    def merged(self, uri: str) -> list[types.Diagnostic]:
        entry = self._documents.get(uri)
        return entry.merged() if entry else []

    def result_id(self, uri: str) -> str:
        entry = self._documents.get(uri)
        return f"{entry.version}.{entry.generation}" if entry else "none"

    def forget(self, uri: str) -> None:
        self._documents.pop(uri, None)

    def publish_params(self, uri: str) -> types.PublishDiagnosticsParams:
        entry = self._documents.get(uri)
        return types.PublishDiagnosticsParams(
            uri=uri, diagnostics=entry.merged() if entry else [], version=entry.version if entry else None
        )

    def pull_report(
        self, uri: str, previous_result_id: str | None
    ) -> types.RelatedFullDocumentDiagnosticReport | types.RelatedUnchangedDocumentDiagnosticReport:
        result_id = self.result_id(uri)
        if previous_result_id is not None and previous_result_id == result_id:
            return types.RelatedUnchangedDocumentDiagnosticReport(result_id=result_id)
        return types.RelatedFullDocumentDiagnosticReport(items=self.merged(uri), result_id=result_id)


def client_pulls_diagnostics(capabilities: types.ClientCapabilities | None) -> bool:
    """Whether the client declared ``textDocument/diagnostic`` support (then we never push)."""
    text_document = capabilities.text_document if capabilities else None
    return bool(text_document and text_document.diagnostic is not None)
