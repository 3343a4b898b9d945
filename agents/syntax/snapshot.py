"""Immutable document snapshots that every agent shares: one per document version, with its tree-sitter tree.

A snapshot is never changed. An edit makes the next snapshot: the bytes are spliced, a *copy* of the old tree is
told about the edit (``tree.edit``) and the parser reuses it (``parser.parse(new, old_tree)``), so the old
snapshot — which an agent may still be reading — keeps a tree that matches its own text. Nothing here is
proportional to the size of the file except what tree-sitter itself needs (the new bytes).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from functools import cached_property

import tree_sitter

from .languages import LanguageSpec, language_for, parser
from .positions import LineIndex, PositionEncoding, byte_to_column, column_to_byte, decode, encode

log = logging.getLogger(__name__)

DEFAULT_MAX_PARSE_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class TextPosition:
    """A position as an editor counts it (line, character in the snapshot's encoding)."""

    line: int
    character: int


@dataclass(frozen=True)
class TextChange:
    """One content change: replace ``[start, end)`` with ``text``; no range replaces the whole document."""

    text: str
    start: TextPosition | None = None
    end: TextPosition | None = None


@dataclass(frozen=True)
class DocumentSnapshot:
    """One version of one document: its bytes, lines and (for a known language under the size limit) its tree."""

    uri: str
    version: int
    source: bytes
    language: LanguageSpec | None
    tree: tree_sitter.Tree | None
    lines: LineIndex = field(repr=False)
    encoding: PositionEncoding = PositionEncoding.UTF16
    max_parse_bytes: int = DEFAULT_MAX_PARSE_BYTES
    clamped: bool = False
    """True when an edit that made this snapshot named a position past the end and was clamped to it."""
    lone_cr: bool = False
    """Whether a ``\\r`` not followed by ``\\n`` may occur: then LSP lines and tree-sitter rows differ."""

    @classmethod
    def open(
        cls,
        uri: str,
        version: int,
        text: str,
        language_id: str | None = None,
        encoding: PositionEncoding = PositionEncoding.UTF16,
        max_parse_bytes: int = DEFAULT_MAX_PARSE_BYTES,
    ) -> DocumentSnapshot:
        source = encode(text)
        language = language_for(language_id, uri)
        tree = None
        if language is not None and len(source) <= max_parse_bytes:
            tree = parser(language).parse(source)
        lone_cr = source.count(b"\r") != source.count(b"\r\n")
        return cls(
            uri, version, source, language, tree, LineIndex.of(source), encoding, max_parse_bytes, False, lone_cr
        )

    def for_document(self, uri: str, version: int) -> DocumentSnapshot:
        """The same text as another document's snapshot: the bytes, line index and tree are shared (a tree copy
        shares its nodes), so documents with identical text — a file and its diff view, the same file under two
        URIs — cost one parse and one tree's memory."""
        tree = self.tree.copy() if self.tree is not None else None
        return replace(self, uri=uri, version=version, tree=tree, clamped=False)

    @cached_property
    def text(self) -> str:
        return decode(self.source)

    @property
    def language_name(self) -> str | None:
        return self.language.name if self.language else None

    @property
    def too_large_to_parse(self) -> bool:
        return self.language is not None and self.tree is None

    # -- positions --------------------------------------------------------------------------------------------------

    def offset_at(self, position: TextPosition) -> int:
        """Byte offset of an editor position, clamped to the document."""
        return _View(self.source, self.lines, self.encoding).offset_at(position)

    def position_at(self, offset: int) -> TextPosition:
        """Editor position of a byte offset."""
        offset = max(0, min(offset, len(self.source)))
        line = self.lines.line_of(offset)
        start = self.lines.line_start(line)
        column = byte_to_column(self.lines.line_bytes(self.source, line), offset - start, self.encoding)
        return TextPosition(line, column)

    def is_past_end(self, position: TextPosition) -> bool:
        """Whether an editor position lies beyond the last line or beyond the end of its line."""
        return _View(self.source, self.lines, self.encoding).is_past(position)

    # -- edits ------------------------------------------------------------------------------------------------------

    def with_changes(self, version: int, changes: list[TextChange]) -> DocumentSnapshot:
        """The next snapshot: ``changes`` applied in order (as LSP sends them), the tree updated incrementally."""
        source, lines, tree, clamped, lone_cr = self.source, self.lines, self.tree, False, self.lone_cr
        if tree is not None:
            tree = tree.copy()
        for change in changes:
            if change.start is None or change.end is None:
                source = encode(change.text)
                lines = LineIndex.of(source)
                lone_cr = source.count(b"\r") != source.count(b"\r\n")
                tree = None
                continue
            view = _View(source, lines, self.encoding)
            start, end = view.offset_at(change.start), view.offset_at(change.end)
            clamped = clamped or view.is_past(change.start) or view.is_past(change.end)
            if end < start:
                start, end = end, start
            inserted = encode(change.text)
            new_source = source[:start] + inserted + source[end:]
            new_end = start + len(inserted)
            new_lines = lines.edited(new_source, start, end, new_end)
            new_lone_cr = lone_cr or _makes_lone_cr(new_source, start, new_end)
            if tree is not None:
                tree.edit(
                    start_byte=start,
                    old_end_byte=end,
                    new_end_byte=new_end,
                    start_point=_tree_sitter_point(start, source, lines, lone_cr),
                    old_end_point=_tree_sitter_point(end, source, lines, lone_cr),
                    new_end_point=_tree_sitter_point(new_end, new_source, new_lines, new_lone_cr),
                )
            source, lines, lone_cr = new_source, new_lines, new_lone_cr
        new_tree = None
        if self.language is not None and len(source) <= self.max_parse_bytes:
            language_parser = parser(self.language)
            new_tree = language_parser.parse(source, tree) if tree is not None else language_parser.parse(source)
        return DocumentSnapshot(
            self.uri, version, source, self.language, new_tree, lines, self.encoding, self.max_parse_bytes, clamped,
            lone_cr,
        )


def _tree_sitter_point(offset: int, data: bytes, lines: LineIndex, lone_cr: bool) -> tuple[int, int]:
    """tree-sitter's (row, byte column): rows count ``\\n`` only, which LSP lines match unless a lone CR occurs."""
    if lone_cr:
        return data.count(b"\n", 0, offset), offset - (data.rfind(b"\n", 0, offset) + 1)
    line = lines.line_of(offset)
    return line, offset - lines.line_start(line)


def _makes_lone_cr(source: bytes, start: int, new_end: int) -> bool:
    """Whether the bytes around an edit hold a CR not followed by LF (sticky: removing one is not tracked)."""
    position = source.find(b"\r", max(start - 1, 0), new_end + 1)
    while position != -1:
        if source[position + 1:position + 2] != b"\n":
            return True
        position = source.find(b"\r", position + 1, new_end + 1)
    return False


@dataclass(frozen=True)
class _View:
    """Position arithmetic over intermediate text while a batch of changes is applied."""

    source: bytes
    lines: LineIndex
    encoding: PositionEncoding

    def offset_at(self, position: TextPosition) -> int:
        if position.line < 0:
            return 0
        if position.line >= self.lines.line_count:
            return len(self.source)
        line = self.lines.line_bytes(self.source, position.line)
        return self.lines.line_start(position.line) + column_to_byte(line, position.character, self.encoding)

    def is_past(self, position: TextPosition) -> bool:
        if position.line >= self.lines.line_count or position.line < 0:
            return True
        line = self.lines.line_bytes(self.source, position.line)
        return position.character > byte_to_column(line, len(line), self.encoding)
