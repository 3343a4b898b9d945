"""Editor positions and byte offsets: emoji, CJK, combining marks, every kind of line break, every encoding.

LSP counts UTF-16 code units by default (UTF-8 bytes or UTF-32 code points when negotiated), tree-sitter counts
UTF-8 bytes. A wrong conversion puts every diagnostic and every edit in the wrong place on any line with an emoji,
so each case here pins an exact number.
"""

from __future__ import annotations

import pytest

from metagpt_lsp.agents.syntax import positions
from metagpt_lsp.agents.syntax.positions import (
    LineIndex,
    PositionEncoding,
    byte_to_column,
    column_to_byte,
    decode,
    encode,
    units_in,
)
from metagpt_lsp.agents.syntax.snapshot import DocumentSnapshot, TextChange, TextPosition

UTF8, UTF16, UTF32 = PositionEncoding.UTF8, PositionEncoding.UTF16, PositionEncoding.UTF32

EMOJI = "🎉"            # U+1F389: 4 UTF-8 bytes, a surrogate pair (2 UTF-16 units), 1 code point
CJK = "日本"             # 3 UTF-8 bytes each, 1 unit each
COMBINING = "e\u0301"   # "é" as e + COMBINING ACUTE ACCENT: two code points, 1 + 2 bytes


@pytest.mark.parametrize(
    ("text", "utf8", "utf16", "utf32"),
    [
        ("abc", 3, 3, 3),
        (EMOJI, 4, 2, 1),
        (f"a{EMOJI}b", 6, 4, 3),
        (CJK, 6, 2, 2),
        (COMBINING, 3, 2, 2),
        ("é", 2, 1, 1),
        (f"{EMOJI}{EMOJI}", 8, 4, 2),
        ("", 0, 0, 0),
    ],
)
def test_units_of_text_in_each_encoding(text: str, utf8: int, utf16: int, utf32: int) -> None:
    assert (units_in(text, UTF8), units_in(text, UTF16), units_in(text, UTF32)) == (utf8, utf16, utf32)


LINE = f"a{EMOJI}b{CJK}{COMBINING}".encode()
"""Bytes: a=0, emoji=1..4, b=5, 日=6..8, 本=9..11, e=12, combining=13..14; 15 bytes."""


@pytest.mark.parametrize(
    ("encoding", "character", "byte"),
    [
        (UTF16, 0, 0), (UTF16, 1, 1), (UTF16, 2, 1), (UTF16, 3, 5), (UTF16, 4, 6), (UTF16, 5, 9), (UTF16, 6, 12),
        (UTF16, 7, 13), (UTF16, 8, 15), (UTF16, 99, 15),
        (UTF32, 1, 1), (UTF32, 2, 5), (UTF32, 3, 6), (UTF32, 5, 12), (UTF32, 6, 13), (UTF32, 7, 15), (UTF32, 50, 15),
        (UTF8, 1, 1), (UTF8, 2, 1), (UTF8, 4, 1), (UTF8, 5, 5), (UTF8, 7, 6), (UTF8, 14, 13), (UTF8, 15, 15),
        (UTF8, 40, 15),
        (UTF16, -3, 0),
    ],
)
def test_character_to_byte_snaps_inside_a_character_and_clamps_past_the_line(
    encoding: PositionEncoding, character: int, byte: int,
) -> None:
    """UTF-16 character 2 is the middle of the emoji's surrogate pair: it means the emoji's start."""
    assert column_to_byte(LINE, character, encoding) == byte


@pytest.mark.parametrize(
    ("byte", "utf8", "utf16", "utf32"),
    [
        (0, 0, 0, 0), (1, 1, 1, 1), (3, 1, 1, 1), (5, 5, 3, 2), (6, 6, 4, 3), (7, 6, 4, 3), (9, 9, 5, 4),
        (12, 12, 6, 5), (13, 13, 7, 6), (14, 13, 7, 6), (15, 15, 8, 7), (99, 15, 8, 7),
    ],
)
def test_byte_to_character_counts_from_the_start_of_a_character(byte: int, utf8: int, utf16: int, utf32: int) -> None:
    assert [byte_to_column(LINE, byte, encoding) for encoding in (UTF8, UTF16, UTF32)] == [utf8, utf16, utf32]


def test_every_character_boundary_round_trips_in_every_encoding() -> None:
    text = LINE.decode()
    for index in range(len(text) + 1):
        byte = len(text[:index].encode())
        for encoding in PositionEncoding:
            column = units_in(text[:index], encoding)
            assert byte_to_column(LINE, byte, encoding) == column
            assert column_to_byte(LINE, column, encoding) == byte


def test_encoding_names_from_the_client() -> None:
    assert PositionEncoding.from_lsp("utf-8") is UTF8
    assert PositionEncoding.from_lsp("utf-32") is UTF32
    assert PositionEncoding.from_lsp("utf-16") is UTF16
    assert PositionEncoding.from_lsp(None) is UTF16
    assert PositionEncoding.from_lsp("latin-1") is UTF16


def test_lone_surrogates_from_json_survive_a_round_trip() -> None:
    text = "a\ud83db"  # half an emoji, as a JSON string may carry it
    assert decode(encode(text)) == text
    assert decode(b"\xff\xfe ok") == "\ufffd\ufffd ok"


# -- lines -----------------------------------------------------------------------------------------------------------

MIXED = b"a\r\nb\rc\nd"
"""Four lines: CRLF, lone CR and LF all end a line in LSP."""


def _starts(index: LineIndex) -> list[int]:
    return [index.line_start(line) for line in range(index.line_count)]


def test_crlf_lone_cr_and_lf_each_end_one_line() -> None:
    index = LineIndex.of(MIXED)
    assert index.line_count == 4
    assert _starts(index) == [0, 3, 5, 7]
    assert [index.line_bytes(MIXED, line) for line in range(4)] == [b"a", b"b", b"c", b"d"]
    assert [index.line_of(offset) for offset in range(len(MIXED) + 1)] == [0, 0, 0, 1, 1, 2, 2, 3, 3]


def test_a_trailing_line_break_opens_an_empty_last_line() -> None:
    for data in (b"x\n", b"x\r\n", b"x\r"):
        index = LineIndex.of(data)
        assert index.line_count == 2
        assert index.line_start(1) == len(data)
        assert index.line_bytes(data, 1) == b""
    assert LineIndex.of(b"").line_count == 1


def test_lines_past_the_end_start_at_the_end() -> None:
    index = LineIndex.of(MIXED)
    assert index.line_start(4) == index.line_start(100) == len(MIXED)


def test_an_edit_in_a_long_document_updates_only_its_lines_and_matches_a_fresh_index() -> None:
    data = b"".join(f"line {n}\r\n".encode() if n % 3 else f"line {n}\n".encode() for n in range(1000))
    index = LineIndex.of(data)
    start = index.line_start(600) + 2
    old_end = index.line_start(603) + 1
    inserted = f"new\rtext {EMOJI}\r\nmore\n".encode()
    new_data = data[:start] + inserted + data[old_end:]
    edited = index.edited(new_data, start, old_end, start + len(inserted))
    fresh = LineIndex.of(new_data)
    assert (edited.line_count, edited.length, _starts(edited)) == (fresh.line_count, fresh.length, _starts(fresh))


@pytest.mark.parametrize(
    ("data", "start", "old_end", "inserted"),
    [
        (b"a\r\nb", 2, 2, b"x"),      # splits a CRLF into a lone CR and an LF: one more line
        (b"a\rxb\nc", 2, 3, b""),     # removes a character after a lone CR: it stays lone
        (b"a\rx\nb", 2, 3, b""),      # joins CR and LF into one CRLF: one line fewer
        (b"a\rb", 2, 2, b"\n"),       # turns a lone CR into a CRLF
        (b"ab", 2, 2, b"\r\n\r"),     # appends at the very end
    ],
)
@pytest.mark.parametrize("block_lines", [1, 2, positions._BLOCK_LINES])
def test_edits_that_make_or_break_crlf_pairs(
    data: bytes, start: int, old_end: int, inserted: bytes, block_lines: int, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Also with blocks of one or two lines, so that the CR and the LF fall in different blocks."""
    monkeypatch.setattr(positions, "_BLOCK_LINES", block_lines)
    new_data = data[:start] + inserted + data[old_end:]
    edited = LineIndex.of(data).edited(new_data, start, old_end, start + len(inserted))
    assert _starts(edited) == _starts(LineIndex.of(new_data))


# -- positions in a document -----------------------------------------------------------------------------------------

TEXT = f"x = '{EMOJI}'\r\n{CJK}{COMBINING}\rlast"
"""Bytes: line 0 is 0..9 (emoji 5..8) then CRLF 10..11; line 1 is 12..20 (日 12, 本 15, e 18, accent 19..20) then a
lone CR at 21; line 2 is "last", 22..25; 26 bytes."""


def _snapshot(encoding: PositionEncoding) -> DocumentSnapshot:
    return DocumentSnapshot.open("file:///t.py", 1, TEXT, "python", encoding)


def test_the_document_layout_the_cases_rely_on() -> None:
    snapshot = _snapshot(UTF16)
    assert len(snapshot.source) == 26
    assert _starts(snapshot.lines) == [0, 12, 22]


@pytest.mark.parametrize(
    ("encoding", "position", "offset"),
    [
        (UTF16, TextPosition(0, 5), 5), (UTF16, TextPosition(0, 6), 5), (UTF16, TextPosition(0, 7), 9),
        (UTF16, TextPosition(0, 8), 10), (UTF16, TextPosition(0, 9), 10),          # past the line end: before its CRLF
        (UTF16, TextPosition(1, 2), 18), (UTF16, TextPosition(1, 4), 21), (UTF16, TextPosition(1, 40), 21),
        (UTF16, TextPosition(2, 2), 24), (UTF16, TextPosition(2, 4), 26), (UTF16, TextPosition(3, 0), 26),
        (UTF16, TextPosition(99, 3), 26),
        (UTF8, TextPosition(0, 7), 5), (UTF8, TextPosition(0, 9), 9), (UTF8, TextPosition(1, 3), 15),
        (UTF8, TextPosition(1, 8), 19), (UTF8, TextPosition(1, 9), 21),
        (UTF32, TextPosition(0, 6), 9), (UTF32, TextPosition(1, 2), 18), (UTF32, TextPosition(1, 3), 19),
    ],
)
def test_offset_of_a_position(encoding: PositionEncoding, position: TextPosition, offset: int) -> None:
    assert _snapshot(encoding).offset_at(position) == offset


@pytest.mark.parametrize(
    ("encoding", "offset", "position"),
    [
        (UTF16, 5, TextPosition(0, 5)), (UTF16, 7, TextPosition(0, 5)), (UTF16, 9, TextPosition(0, 7)),
        (UTF16, 11, TextPosition(0, 8)), (UTF16, 12, TextPosition(1, 0)), (UTF16, 19, TextPosition(1, 3)),
        (UTF16, 20, TextPosition(1, 3)), (UTF16, 21, TextPosition(1, 4)), (UTF16, 22, TextPosition(2, 0)),
        (UTF16, 26, TextPosition(2, 4)), (UTF16, 500, TextPosition(2, 4)),
        (UTF8, 9, TextPosition(0, 9)), (UTF8, 7, TextPosition(0, 5)), (UTF32, 9, TextPosition(0, 6)),
        (UTF32, 21, TextPosition(1, 4)),
    ],
)
def test_position_of_an_offset(encoding: PositionEncoding, offset: int, position: TextPosition) -> None:
    """Offsets inside a character or inside a CRLF belong to that character or that line."""
    assert _snapshot(encoding).position_at(offset) == position


def test_positions_past_a_line_or_past_the_document_are_recognised() -> None:
    snapshot = _snapshot(UTF16)
    assert not snapshot.is_past_end(TextPosition(0, 8))
    assert snapshot.is_past_end(TextPosition(0, 9))
    assert not snapshot.is_past_end(TextPosition(2, 4))
    assert snapshot.is_past_end(TextPosition(2, 5))
    assert snapshot.is_past_end(TextPosition(3, 0))
    assert _snapshot(UTF8).is_past_end(TextPosition(0, 11))
    assert not _snapshot(UTF8).is_past_end(TextPosition(0, 10))


def test_a_change_past_the_end_is_clamped_and_flagged() -> None:
    snapshot = _snapshot(UTF16)
    changed = snapshot.with_changes(2, [TextChange("!", TextPosition(7, 0), TextPosition(9, 9))])
    assert changed.text == TEXT + "!"
    assert changed.clamped
    assert not snapshot.with_changes(2, [TextChange("!", TextPosition(2, 4), TextPosition(2, 4))]).clamped


def test_a_change_inside_a_surrogate_pair_replaces_the_whole_emoji() -> None:
    snapshot = _snapshot(UTF16)
    changed = snapshot.with_changes(2, [TextChange("?", TextPosition(0, 6), TextPosition(0, 7))])
    assert changed.text == TEXT.replace(EMOJI, "?")

