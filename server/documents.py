"""The open documents: one immutable :class:`DocumentSnapshot` per URI, replaced on every change.

This is where LSP text synchronisation meets the syntax layer: lsprotocol change events become
:class:`TextChange`s, and anything odd about them — a change for a document never opened, a version that goes
backwards, a range past the end — is applied as safely as possible and reported as a :class:`SyncProblem` for the
caller to log. The editor owns the text, so a valid change is never refused: refusing would make us diverge from it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from lsprotocol import types

from metagpt_lsp.agents.syntax import (
    DEFAULT_MAX_PARSE_BYTES,
    DocumentSnapshot,
    PositionEncoding,
    TextChange,
    TextPosition,
    encode,
    language_for,
)


@dataclass(frozen=True)
class SyncProblem:
    """Something odd about a synchronisation message, worded for the log."""

    uri: str
    message: str


def to_text_changes(events: Iterable[types.TextDocumentContentChangeEvent]) -> list[TextChange]:
    changes = []
    for event in events:
        event_range = getattr(event, "range", None)
        if event_range is None:
            changes.append(TextChange(event.text))
        else:
            changes.append(TextChange(
                event.text,
                TextPosition(event_range.start.line, event_range.start.character),
                TextPosition(event_range.end.line, event_range.end.character),
            ))
    return changes


class DocumentStore:
    """Snapshots of the open documents by URI. All calls happen on the event loop's thread."""

    def __init__(self) -> None:
        self._snapshots: dict[str, DocumentSnapshot] = {}
        self.encoding = PositionEncoding.UTF16
        self.max_parse_bytes = DEFAULT_MAX_PARSE_BYTES

    def __len__(self) -> int:
        return len(self._snapshots)

    def __contains__(self, uri: str) -> bool:
        return uri in self._snapshots

    def get(self, uri: str) -> DocumentSnapshot | None:
        return self._snapshots.get(uri)

    def uris(self) -> list[str]:
        return list(self._snapshots)

    def open(self, item: types.TextDocumentItem) -> tuple[DocumentSnapshot, list[SyncProblem]]:
        problems = []
        if item.uri in self._snapshots:
            problems.append(SyncProblem(item.uri, "opened again while already open; its text is replaced"))
        twin = self._same_text(item)
        if twin is not None:
            snapshot = twin.for_document(item.uri, item.version)
        else:
            snapshot = DocumentSnapshot.open(
                item.uri, item.version, item.text, item.language_id, self.encoding, self.max_parse_bytes
            )
        self._snapshots[item.uri] = snapshot
        return snapshot, problems + _describe(snapshot, item.language_id)

    def _same_text(self, item: types.TextDocumentItem) -> DocumentSnapshot | None:
        """An open document with exactly this text, language and limits, whose tree can be shared."""
        language = language_for(item.language_id, item.uri)
        candidates = [snapshot for snapshot in self._snapshots.values()
                      if snapshot.language == language and snapshot.encoding == self.encoding
                      and snapshot.max_parse_bytes == self.max_parse_bytes and snapshot.uri != item.uri]
        if not candidates:
            return None
        source = encode(item.text)
        return next((snapshot for snapshot in candidates
                     if len(snapshot.source) == len(source) and snapshot.source == source), None)

    def change(
        self, uri: str, version: int | None, events: Iterable[types.TextDocumentContentChangeEvent]
    ) -> tuple[DocumentSnapshot | None, list[SyncProblem]]:
        current = self._snapshots.get(uri)
        if current is None:
            return None, [SyncProblem(uri, "change for a document that is not open; ignored")]
        problems = []
        new_version = current.version + 1 if version is None else version
        if version is not None and version <= current.version:
            problems.append(SyncProblem(
                uri, f"version went from {current.version} to {version}; applied anyway (the editor owns the text)"))
        changes = to_text_changes(events)
        if any("\x00" in change.text for change in changes):
            problems.append(SyncProblem(uri, f"version {new_version}: the change inserts NUL characters (U+0000); "
                                             "kept as they are"))
        snapshot = current.with_changes(new_version, changes)
        if snapshot.clamped:
            problems.append(SyncProblem(uri, f"version {new_version}: a change range lay past the end of the "
                                             "document and was clamped to it"))
        self._snapshots[uri] = snapshot
        return snapshot, problems

    def close(self, uri: str) -> list[SyncProblem]:
        if self._snapshots.pop(uri, None) is None:
            return [SyncProblem(uri, "close for a document that is not open; ignored")]
        return []


def _describe(snapshot: DocumentSnapshot, language_id: str) -> list[SyncProblem]:
    problems = []
    if b"\x00" in snapshot.source:
        problems.append(SyncProblem(snapshot.uri, f"contains {snapshot.source.count(0):,} NUL character(s) (U+0000); "
                                                  "kept as they are"))
    return problems + _describe_language(snapshot, language_id)


def _describe_language(snapshot: DocumentSnapshot, language_id: str) -> list[SyncProblem]:
    if snapshot.language is None:
        return [SyncProblem(snapshot.uri, f"language {language_id!r} has no grammar here; kept as plain text")]
    if snapshot.too_large_to_parse:
        return [SyncProblem(snapshot.uri, f"{len(snapshot.source):,} bytes is over syntax.maxParseBytes "
                                          f"({snapshot.max_parse_bytes:,}); kept as text, no syntax checks")]
    return []
