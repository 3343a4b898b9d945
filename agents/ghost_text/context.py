"""What the model sees around the cursor: a window of whole lines before and after it, within a token budget,
and the signatures of the functions and classes used near the cursor that the window does not show.

The window is cut on characters (the document's bytes are decoded first), so no UTF-8 sequence is ever split. Its
first line is rounded down to a multiple of :data:`WINDOW_STEP` lines: moving the cursor down a line keeps the
same start, so the model server's prefix KV cache still holds the whole prompt up to the cursor. Signatures come
from the shared tree-sitter trees (this file's definitions outside the window, then open documents of the same
language), in a stable order — by document, then by position — never by how recently a name was typed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..syntax import DocumentSnapshot, code_units, decode
from .fim_templates import ContextFile

WINDOW_STEP = 16
CHARS_PER_TOKEN = 3.2  # a conservative estimate for code (BPE tokenizers average 3.5-4 characters a token)
NEAR_LINES = 12  # names used this close to the cursor pick the signatures shown
MAX_SIGNATURES = 24
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class WindowOptions:
    prefix_lines: int = 256
    suffix_lines: int = 64
    max_prompt_tokens: int = 1536


@dataclass(frozen=True)
class CursorContext:
    """The text the prompt shows: ``prefix`` ends at the cursor, ``suffix`` starts there; ``files`` go first."""

    prefix: str
    suffix: str
    files: tuple[ContextFile, ...]
    path: str

    @property
    def line_before(self) -> str:
        """The cursor's line up to the cursor."""
        return self.prefix.rsplit("\n", 1)[-1]

    @property
    def line_after(self) -> str:
        """The cursor's line from the cursor on."""
        return self.suffix.split("\n", 1)[0]


def estimate_tokens(text: str) -> int:
    return int(len(text) / CHARS_PER_TOKEN) + 1


def cursor_context(snapshot: DocumentSnapshot, cursor: int, options: WindowOptions,
                   open_documents: tuple[DocumentSnapshot, ...] = ()) -> CursorContext:
    """The window around byte offset ``cursor`` of ``snapshot`` and the signatures it calls for."""
    line = snapshot.lines.line_of(cursor)
    first = max(0, line - options.prefix_lines) // WINDOW_STEP * WINDOW_STEP
    last = min(line + options.suffix_lines, _line_count(snapshot) - 1)
    start = snapshot.lines.line_start(first)
    end = snapshot.lines.line_start(last + 1) if last + 1 < _line_count(snapshot) else len(snapshot.source)
    prefix, suffix = decode(snapshot.source[start:cursor]), decode(snapshot.source[cursor:max(cursor, end)])
    budget = int(options.max_prompt_tokens * CHARS_PER_TOKEN)
    suffix = _head(suffix, budget // 4)  # the suffix gets at most a quarter of the budget
    prefix = _tail(prefix, budget - len(suffix))
    files = _signatures(snapshot, cursor, (start, end), open_documents,
                        budget - len(prefix) - len(suffix))
    return CursorContext(prefix, suffix, files, _path_of(snapshot.uri))


def _line_count(snapshot: DocumentSnapshot) -> int:
    return snapshot.lines.line_of(len(snapshot.source)) + 1


def _tail(text: str, chars: int) -> str:
    """The last whole lines of ``text`` that fit in ``chars`` characters (characters, if one line is longer)."""
    if len(text) <= chars:
        return text
    cut = text[len(text) - chars:]
    newline = cut.find("\n")
    return cut[newline + 1:] if newline != -1 else cut


def _head(text: str, chars: int) -> str:
    if len(text) <= chars:
        return text
    cut = text[:chars]
    newline = cut.rfind("\n")
    return cut[:newline + 1] if newline > 0 else cut


def _path_of(uri: str) -> str:
    return uri.split("://", 1)[-1].rsplit("/", 1)[-1] if uri else "untitled"


def _signatures(snapshot: DocumentSnapshot, cursor: int, window: tuple[int, int],
                open_documents: tuple[DocumentSnapshot, ...], chars: int) -> tuple[ContextFile, ...]:
    """Signatures of the definitions whose names are used near the cursor, outside the window, within ``chars``."""
    if chars <= 0 or snapshot.tree is None:
        return ()
    line = snapshot.lines.line_of(cursor)
    near_start = snapshot.lines.line_start(max(0, line - NEAR_LINES))
    near_end_line = min(line + NEAR_LINES + 1, _line_count(snapshot))
    near_end = snapshot.lines.line_start(near_end_line) if near_end_line < _line_count(snapshot) else len(
        snapshot.source)
    used = set(_IDENTIFIER.findall(decode(snapshot.source[near_start:near_end])))
    files: list[ContextFile] = []
    shown = 0
    sources = [(snapshot, window)] + [(other, (0, 0)) for other in sorted(open_documents, key=lambda s: s.uri)
                                      if other.uri != snapshot.uri and other.language == snapshot.language]
    count = 0
    for source, (skip_start, skip_end) in sources:
        lines = []
        for unit in code_units(source):
            if unit.name not in used or (skip_start <= unit.start_byte < skip_end) or count >= MAX_SIGNATURES:
                continue
            signature = _signature_of(unit.text)
            if shown + len(signature) > chars:
                break
            lines.append(signature)
            shown += len(signature) + 1
            count += 1
        if lines:
            files.append(ContextFile(_path_of(source.uri), "\n".join(lines)))
    return tuple(files)


def _signature_of(text: str) -> str:
    """A definition's header: its lines up to the one that opens the body (``:`` or ``{`` at the end)."""
    header: list[str] = []
    for line in text.splitlines():
        header.append(line.rstrip())
        stripped = line.rstrip()
        if stripped.endswith((":", "{")) and not stripped.lstrip().startswith("@"):
            break
        if len(header) >= 6:
            break
    body_indent = " " * (len(header[-1]) - len(header[-1].lstrip()) + 4)
    return "\n".join(header) + (f"\n{body_indent}..." if header[-1].endswith(":") else "")
