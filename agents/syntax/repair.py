"""Trial repair: ask the parser itself which one-token edit makes a syntax error go away.

tree-sitter says *where* it gave up (an ERROR node) but not *why*. The why is found by trying: insert ``:`` after
``def f(x)``, or delete the second ``)`` of ``foo(1, 2))``, reparse, and see whether the error is gone. The edit that
removes it names the problem (``expected ":"``, ``unexpected ")"``).

Trials never reparse the whole file. Each parses a *window*: the lines around the error, starting at a line that
begins a statement of its own (so the window parses as the document does) and ending a few lines past the point of
repair. A trial passes when the window, edited, has no error left near the repair, no new error before it and no
more errors in all than before. Windows are a few kilobytes, trials are incremental reparses of the window, and a
call has a fixed budget of work — bytes handed to the parser, counted, not timed — so the cost per keystroke stays
small whatever the size of the file, and the answers are the same on a fast machine and a busy one.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import tree_sitter

from .tokens import indentation, is_atomic, line_end, line_start, starts_statement
from .trial_edits import TrialEdit

PARSE_BUDGET_BYTES = 32_000
"""Bytes the trial parses of one :func:`syntax_problems` call may hand to the parser (about 3 ms of one core at
tree-sitter's 12 MB/s on Python). Ordinary mistakes need a few kilobytes; the cap stops a file full of them. Text in
the wrong language, whose error recovery is slow, is stopped before it costs much: a window with more than
:data:`_MAX_BASELINE_ERRORS` errors gets no trials."""
_ECHO_RESERVE_BYTES = 8_000
"""The end of the budget is kept for windows alone: telling later errors' echoes apart costs one parse each."""
_MAX_BASELINE_ERRORS = 4
"""A window with more errors than this is not code a person is typing but text in the wrong language: no trials."""
_WINDOW_BACK_BYTES = 1500
_WINDOW_BACK_LINES = 40
_WINDOW_AFTER_LINES = 3
_WINDOW_AHEAD_BYTES = 1000
_WINDOW_AHEAD_LINES = 30
_MAX_WINDOW_BYTES = 4000
"""Longer windows (a minified line, a huge literal) get no trials: the cheap explanations must do."""
_MAX_SITES = 32

_THREAD = threading.local()
"""Per thread, the parsers for trials (a parser must not be shared between threads), apart from the documents'."""


def error_sites(root: tree_sitter.Node, limit: int = _MAX_SITES) -> list[tree_sitter.Node]:
    """The outermost ERROR nodes and the MISSING nodes outside them, in document order."""
    sites: list[tree_sitter.Node] = []
    stack = [root]
    while stack and len(sites) < limit:
        node = stack.pop()
        if node.is_missing or node.is_error:
            sites.append(node)
        else:
            stack.extend(child for child in reversed(node.children) if child.has_error or child.is_missing)
    return sites


def _trial_parser(language: tree_sitter.Language) -> tree_sitter.Parser:
    parsers: dict[tree_sitter.Language, tree_sitter.Parser] = _THREAD.__dict__.setdefault("parsers", {})
    found = parsers.get(language)
    if found is None:
        found = parsers[language] = tree_sitter.Parser(language)
    return found


@dataclass(frozen=True)
class _Window:
    """A stretch of source parsed on its own, and the zone in it where an error is being explained."""

    start: int
    text: bytes
    tree: tree_sitter.Tree
    zone: tuple[int, int]
    baseline: list[tuple[int, int]]
    """Error sites of the unedited window, in document coordinates."""

    def errors_in_zone(self) -> bool:
        return any(_overlaps(site, self.zone) for site in self.baseline)

    def errors_before_zone(self) -> int:
        return sum(1 for site in self.baseline if site[1] <= self.zone[0] and not _overlaps(site, self.zone))


class TrialRepair:
    """Trial edits around the errors of one tree, within a budget of bytes parsed."""

    def __init__(self, tree: tree_sitter.Tree, source: bytes, budget_bytes: int = PARSE_BUDGET_BYTES) -> None:
        self.root = tree.root_node
        self.source = source
        self.parser = _trial_parser(tree.language)
        self.language = tree.language
        self.budget_bytes = budget_bytes
        self.spent_bytes = 0
        self._windows: dict[tuple[int, int], _Window | None] = {}

    def has_token(self, kind: str, named: bool = False) -> bool:
        """Whether the language has this token or node kind at all (no point trying ``;`` in a language without)."""
        return self.language.id_for_node_kind(kind, named) not in (None, 0)

    def window(self, anchor: int, point: int) -> _Window | None:
        """The window that explains an error from the line of ``anchor`` to a repair at ``point``.

        None when the budget is spent or the window would be too long to parse cheaply.
        """
        source = self.source
        anchor = line_start(source, anchor if point - anchor <= _WINDOW_BACK_BYTES else point)
        zone_end = line_end(source, point)
        if zone_end < len(source):
            zone_end = line_end(source, zone_end + 1)
        key = (anchor, zone_end)
        if key not in self._windows:
            start, end = self.statement_start(anchor), self._window_end(zone_end)
            fits = end - start <= _MAX_WINDOW_BYTES and self._spend(end - start)
            window = self._open_window(start, end, anchor, zone_end) if fits else None
            if window is not None and len(window.baseline) > _MAX_BASELINE_ERRORS:
                window = None
            self._windows[key] = window
        return self._windows[key]

    def fixes(self, window: _Window, edit: TrialEdit) -> bool:
        """Whether ``edit`` leaves no error near the repair (and none new elsewhere in the window)."""
        start, end, insert = edit.start, edit.end, edit.insert.encode()
        if start < window.start or end > window.start + len(window.text) or not self._spend(
                len(window.text), _ECHO_RESERVE_BYTES):
            return False
        local_start, local_end = start - window.start, end - window.start
        text = window.text[:local_start] + insert + window.text[local_end:]
        edited = window.tree.copy()
        edited.edit(
            start_byte=local_start,
            old_end_byte=local_end,
            new_end_byte=local_start + len(insert),
            start_point=_point(window.text, local_start),
            old_end_point=_point(window.text, local_end),
            new_end_point=_point(text, local_start + len(insert)),
        )
        tree = self.parser.parse(text, edited)
        shift = len(insert) - (end - start)
        sites = [
            (site_start if site_start < start else site_start - shift, site_end if site_end <= start else
             site_end - shift)
            for site_start, site_end in _site_ranges(tree.root_node, window.start)
        ]
        if any(_overlaps(site, window.zone) for site in sites):
            return False
        before = sum(1 for site in sites if site[1] <= window.zone[0] and not _overlaps(site, window.zone))
        return before <= window.errors_before_zone() and len(sites) <= len(window.baseline)

    def _spend(self, cost: int, reserve: int = 0) -> bool:
        """Count ``cost`` bytes of parsing against the budget; False (nothing counted) when they do not fit."""
        if self.spent_bytes + cost > self.budget_bytes - reserve:
            return False
        self.spent_bytes += cost
        return True

    def _open_window(self, start: int, end: int, anchor: int, zone_end: int) -> _Window:
        text = self.source[start:end]
        tree = self.parser.parse(text)
        baseline = _site_ranges(tree.root_node, start)
        return _Window(start, text, tree, (anchor, zone_end), baseline)

    def statement_start(self, anchor: int) -> int:
        """Where a window explaining the line at ``anchor`` starts.

        The nearest line above that starts a statement indented less than the anchor's line (the header of the
        enclosing block, so that fields and members parse as such); failing that, the nearest one indented as much
        (a sibling, so that ``else`` finds its ``if``); failing both, the anchor's line itself.
        """
        source, depth = self.source, indentation(self.source, anchor)
        start, sibling = anchor, None
        for _ in range(_WINDOW_BACK_LINES):
            if start == 0 or anchor - start > _WINDOW_BACK_BYTES:
                break
            start = line_start(source, start - 1)
            indent = indentation(source, start)
            blank = not source[start:start + indent + 1].strip()
            if blank or indent > depth or (sibling is not None and indent == depth):
                continue
            if starts_statement(self.root, source, start):
                if indent < depth:
                    return start
                sibling = start
                if depth == 0:
                    break
        return anchor if sibling is None else sibling

    def _window_end(self, zone_end: int) -> int:
        """A few lines past the zone, cut before a line that starts a statement and never inside a string."""
        source = self.source
        end = cut = _next_line(source, zone_end)
        for count in range(_WINDOW_AHEAD_LINES):
            if end >= len(source):
                cut = end
                break
            if end - zone_end > _WINDOW_AHEAD_BYTES:
                break
            if starts_statement(self.root, source, end):
                cut = end
                if count >= _WINDOW_AFTER_LINES:
                    break
            end = _next_line(source, end)
        spanning = self.root.descendant_for_byte_range(cut, cut + 1)
        if spanning is not None and spanning.start_byte < cut and is_atomic(spanning):
            if spanning.end_byte - cut <= _WINDOW_AHEAD_BYTES:
                cut = _next_line(source, spanning.end_byte)
            elif line_start(source, spanning.start_byte) > zone_end:
                cut = line_start(source, spanning.start_byte)
        return min(cut, len(source))


def _next_line(source: bytes, offset: int) -> int:
    """Offset of the start of the line after the one holding ``offset`` (the end of the source if none)."""
    return source.find(b"\n", offset) + 1 or len(source)


def _site_ranges(root: tree_sitter.Node, offset: int) -> list[tuple[int, int]]:
    if not root.has_error:
        return []
    return [(site.start_byte + offset, site.end_byte + offset) for site in error_sites(root)]


def _overlaps(site: tuple[int, int], zone: tuple[int, int]) -> bool:
    start, end = site
    if start == end:
        return zone[0] <= start <= zone[1]
    return start < zone[1] and end > zone[0]


def _point(text: bytes, offset: int) -> tuple[int, int]:
    return text.count(b"\n", 0, offset), offset - (text.rfind(b"\n", 0, offset) + 1)
