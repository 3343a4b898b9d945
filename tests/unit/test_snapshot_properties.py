"""Incremental edits leave a snapshot exactly where a fresh start would be.

Hypothesis types random sequences of ``didChange`` batches — emoji, CJK, combining marks, CRLF, lone CR, edits at
the end of the file, empty ranges, deletions across lines, positions past a line or past the document, positions
inside a surrogate pair or a UTF-8 sequence, whole-document replacements, several changes per batch — in all three
position encodings. After every batch:

- the text equals a reference model: a few lines of obviously correct Python that split the text into LSP lines
  and convert positions with Python's own ``utf-16``/``utf-8`` codecs;
- the incrementally updated tree equals a fresh parse of the text: the same S-expression (or, where tree-sitter
  hangs a trailing comment on another parent, the same tree without comments), and every token with the same
  bytes *and* points, which is what catches a wrong ``tree.edit``;
- the incrementally updated line index equals a fresh one (with blocks of 1, 2, 3 and the real number of lines,
  so that small documents exercise the block splicing of big ones);
- every older snapshot is unchanged (text and tree), because agents may still be reading it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from metagpt_lsp.agents.syntax import positions
from metagpt_lsp.agents.syntax.languages import language_for, parser
from metagpt_lsp.agents.syntax.positions import LineIndex, PositionEncoding
from metagpt_lsp.agents.syntax.snapshot import DocumentSnapshot, TextChange, TextPosition

# -- the reference model ---------------------------------------------------------------------------------------------

_BREAK = re.compile(r"\r\n|\r|\n")


def model_lines(text: str) -> list[tuple[int, str]]:
    """(index where the line starts, the line without its break) for each LSP line of ``text``."""
    lines, start = [], 0
    for match in _BREAK.finditer(text):
        lines.append((start, text[start:match.start()]))
        start = match.end()
    lines.append((start, text[start:]))
    return lines


def model_index(text: str, position: TextPosition, encoding: PositionEncoding) -> int:
    """String index of an LSP position: clamped to its line, inside a character meaning that character's start."""
    lines = model_lines(text)
    if position.line >= len(lines):
        return len(text)
    start, line = lines[position.line]
    character = max(position.character, 0)
    if encoding is PositionEncoding.UTF32:
        prefix = line[:character]
    elif encoding is PositionEncoding.UTF16:
        prefix = line.encode("utf-16-le")[: 2 * character].decode("utf-16-le", "ignore")
    else:
        prefix = line.encode("utf-8")[:character].decode("utf-8", "ignore")
    return start + len(prefix)


def model_position(text: str, index: int, encoding: PositionEncoding) -> TextPosition:
    """The LSP position of a string index that is a character boundary."""
    for number, (start, line) in reversed(list(enumerate(model_lines(text)))):
        if start <= index:
            prefix = line[: index - start]
            if encoding is PositionEncoding.UTF32:
                return TextPosition(number, len(prefix))
            if encoding is PositionEncoding.UTF16:
                return TextPosition(number, len(prefix.encode("utf-16-le")) // 2)
            return TextPosition(number, len(prefix.encode("utf-8")))
    raise AssertionError("unreachable: line 0 starts at 0")


def model_apply(text: str, change: TextChange, encoding: PositionEncoding) -> str:
    if change.start is None or change.end is None:
        return change.text
    start, end = model_index(text, change.start, encoding), model_index(text, change.end, encoding)
    start, end = min(start, end), max(start, end)
    return text[:start] + change.text + text[end:]


# -- what hypothesis types -------------------------------------------------------------------------------------------

PIECES = [
    "a", "b", "x = 1", " ", "    ", "\t", "\n", "\r\n", "\r", "(", ")", "{", "}", "[", "]", ":", ";", ",", "'", '"',
    "def f():", "if x:", "return", "é", "e\u0301", "日本", "語", "🎉", "👍🏽", "𝔘", "#", "//",
]
pieces = st.lists(st.sampled_from(PIECES), max_size=12).map("".join)


@dataclass(frozen=True)
class Spot:
    """A place in the document, drawn before the document is known."""

    kind: str
    a: float
    b: int

    def position(self, text: str, encoding: PositionEncoding) -> TextPosition:
        lines = model_lines(text)
        if self.kind == "boundary":  # exactly on a character
            return model_position(text, round(self.a * len(text)), encoding)
        if self.kind == "end":  # the very end of the document
            return model_position(text, len(text), encoding)
        if self.kind == "past-line":  # beyond the end of some line
            line = min(int(self.a * len(lines)), len(lines) - 1)
            return TextPosition(line, len(lines[line][1].encode("utf-8")) + self.b)
        if self.kind == "past-document":
            return TextPosition(len(lines) + self.b, self.b)
        line = min(int(self.a * len(lines)), len(lines) - 1)  # "raw": any unit, maybe inside a character
        return TextPosition(line, self.b)


spots = st.builds(
    Spot,
    st.sampled_from(["boundary", "boundary", "boundary", "end", "past-line", "past-document", "raw"]),
    st.floats(min_value=0, max_value=1),
    st.integers(min_value=0, max_value=9),
)


@dataclass(frozen=True)
class Draw:
    text: str
    start: Spot | None
    end: Spot | None

    def change(self, text: str, encoding: PositionEncoding) -> TextChange:
        if self.start is None or self.end is None:
            return TextChange(self.text)
        return TextChange(self.text, self.start.position(text, encoding), self.end.position(text, encoding))


draws = st.builds(
    lambda text, start, end, whole: Draw(text, None, None) if whole else Draw(text, start, end),
    pieces, spots, spots, st.integers(min_value=0, max_value=7).map(lambda roll: roll == 0),
)
"""One change in eight replaces the whole document; the others have a range."""
batches = st.lists(draws, min_size=1, max_size=3)


# -- the checks ------------------------------------------------------------------------------------------------------

def tokens(tree) -> list[tuple]:
    """Every leaf, comments included: kind, bytes and points, in document order."""
    found, cursor = [], tree.walk()
    while True:
        node = cursor.node
        if node.child_count == 0:
            found.append((node.type, node.start_byte, node.end_byte, tuple(node.start_point), tuple(node.end_point)))
        if cursor.goto_first_child():
            continue
        while not cursor.goto_next_sibling():
            if not cursor.goto_parent():
                return found


def shape(node) -> tuple:
    """The tree without its comments: kind, MISSING or not, the bytes from its first to its last other token.

    tree-sitter may hang a comment at the end of a statement on a different parent when it reparses incrementally
    than when it parses afresh (``aa(\n),a//`` with the line break deleted: a pure tree-sitter fact, with exact
    ``tree.edit`` arguments). Such trees agree on every token and every other node, which is what this compares.
    """
    children = tuple(shape(child) for child in node.children if not child.is_extra)
    if children:
        return (node.type, node.is_missing, children[0][2], children[-1][3], children)
    return (node.type, node.is_missing, node.start_byte, node.end_byte, ())


def line_starts(index: LineIndex) -> list[int]:
    return [index.line_start(line) for line in range(index.line_count)]


def assert_consistent(snapshot: DocumentSnapshot, text: str, language: str) -> None:
    assert snapshot.text == text
    assert snapshot.source == text.encode("utf-8")
    fresh_lines = LineIndex.of(snapshot.source)
    assert (snapshot.lines.line_count, snapshot.lines.length) == (fresh_lines.line_count, fresh_lines.length)
    assert line_starts(snapshot.lines) == line_starts(fresh_lines)
    fresh = parser(language_for(language)).parse(snapshot.source)
    assert tokens(snapshot.tree) == tokens(fresh)
    if str(snapshot.tree.root_node) != str(fresh.root_node):  # only where a comment hangs elsewhere
        assert shape(snapshot.tree.root_node) == shape(fresh.root_node)


@contextmanager
def lines_per_block(count: int) -> Iterator[None]:
    """Blocks of ``count`` lines, so that a document of a few lines already spans several blocks."""
    saved = positions._BLOCK_LINES
    positions._BLOCK_LINES = count
    try:
        yield
    finally:
        positions._BLOCK_LINES = saved


@example(  # a LF typed just after a lone CR that ends a block: the CR and LF become one line break
    language="python", encoding=PositionEncoding.UTF16, block_lines=1, initial="a\rb\nc",
    history=[[Draw("\n", Spot("boundary", 0.4, 0), Spot("boundary", 0.4, 0))]], probes=[],
)
@example(  # what stood between a CR and a LF deleted across a block boundary
    language="javascript", encoding=PositionEncoding.UTF8, block_lines=1, initial="a\rxy\nb",
    history=[[Draw("", Spot("boundary", 2 / 7, 0), Spot("boundary", 4 / 7, 0))]], probes=[0.5],
)
@example(  # tree-sitter hangs the trailing comment on another parent than a fresh parse does
    language="javascript", encoding=PositionEncoding.UTF16, block_lines=2, initial="aa(\n),a//",
    history=[[Draw("", Spot("boundary", 3 / 9, 0), Spot("boundary", 4 / 9, 0))]], probes=[1.0],
)
@settings(max_examples=1200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    language=st.sampled_from(["python", "javascript"]),
    encoding=st.sampled_from(list(PositionEncoding)),
    block_lines=st.sampled_from([1, 2, 3, positions._BLOCK_LINES]),
    initial=pieces,
    history=st.lists(batches, min_size=1, max_size=8),
    probes=st.lists(st.floats(min_value=0, max_value=1), max_size=4),
)
def test_incremental_edits_match_the_reference_and_a_fresh_parse(
    language: str,
    encoding: PositionEncoding,
    block_lines: int,
    initial: str,
    history: list[list[Draw]],
    probes: list[float],
) -> None:
    with lines_per_block(block_lines):
        _edit_and_check(language, encoding, initial, history, probes)


def _edit_and_check(
    language: str, encoding: PositionEncoding, initial: str, history: list[list[Draw]], probes: list[float],
) -> None:
    snapshot = DocumentSnapshot.open(f"file:///doc.{language}", 1, initial, language, encoding)
    text = initial
    assert_consistent(snapshot, text, language)
    kept = [(snapshot, text, str(snapshot.tree.root_node))]
    for version, batch in enumerate(history, start=2):
        changes = []
        for draw in batch:  # positions refer to the text as the earlier changes of the batch left it
            change = draw.change(text, encoding)
            changes.append(change)
            text = model_apply(text, change, encoding)
        snapshot = snapshot.with_changes(version, changes)
        assert snapshot.version == version
        assert_consistent(snapshot, text, language)
        kept.append((snapshot, text, str(snapshot.tree.root_node)))
        for probe in probes:  # positions and offsets agree with the model on character boundaries
            index = round(probe * len(text))
            if text[index - 1:index + 1] == "\r\n":
                index -= 1  # between CR and LF is no position at all
            position = model_position(text, index, encoding)
            offset = len(text[:index].encode("utf-8"))
            assert snapshot.offset_at(position) == offset
            assert snapshot.position_at(offset) == position
    for old, old_text, old_tree in kept:
        assert old.text == old_text
        assert str(old.tree.root_node) == old_tree
        assert_consistent(old, old_text, language)


def test_the_model_agrees_with_lsp_on_a_known_case() -> None:
    """The reference itself, pinned: UTF-16 character 2 of "a🎉" is inside the emoji, so it means index 1."""
    text = "a🎉\r\nb\rc"
    assert [line for _, line in model_lines(text)] == ["a🎉", "b", "c"]
    assert model_index(text, TextPosition(0, 2), PositionEncoding.UTF16) == 1
    assert model_index(text, TextPosition(0, 3), PositionEncoding.UTF16) == 2
    assert model_index(text, TextPosition(0, 9), PositionEncoding.UTF16) == 2
    assert model_index(text, TextPosition(1, 1), PositionEncoding.UTF8) == 5
    assert model_index(text, TextPosition(5, 0), PositionEncoding.UTF32) == len(text)
    assert model_position(text, 6, PositionEncoding.UTF16) == TextPosition(2, 0)
