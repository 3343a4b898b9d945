"""The one place where editor positions and byte offsets meet.

LSP counts a position as (line, character) where a character is a UTF-16 code unit unless the client and server
agreed on UTF-8 or UTF-32 (``general.positionEncodings``). Lines end at ``\\n``, ``\\r\\n`` or ``\\r``.
tree-sitter counts bytes of UTF-8 and rows by ``\\n`` only. Never index a ``str`` with an LSP character: convert here.

:class:`LineIndex` knows where each line starts. It is persistent: an edit returns a new index that shares the
unchanged blocks of the old one, so updating it after a keystroke costs a few blocks, not the whole file.
"""

from __future__ import annotations

import bisect
import enum
import re
from dataclasses import dataclass

_LINE_BREAK = re.compile(rb"\r\n|\r|\n")
_BLOCK_LINES = 256


class PositionEncoding(enum.Enum):
    """How an editor counts the ``character`` of a position."""

    UTF8 = "utf-8"
    UTF16 = "utf-16"
    UTF32 = "utf-32"

    @classmethod
    def from_lsp(cls, name: str | None) -> PositionEncoding:
        for encoding in cls:
            if encoding.value == name:
                return encoding
        return cls.UTF16


def decode(data: bytes) -> str:
    """Text from document bytes. Lone surrogates survive the round trip; invalid UTF-8 never raises."""
    try:
        return data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace")


def encode(text: str) -> bytes:
    """Document bytes from text, keeping lone surrogates a JSON string may carry."""
    return text.encode("utf-8", "surrogatepass")


def units_in(text: str, encoding: PositionEncoding) -> int:
    """How many position units ``text`` spans in ``encoding``."""
    if encoding is PositionEncoding.UTF32 or text.isascii():
        return len(text) if encoding is not PositionEncoding.UTF8 else len(encode(text))
    if encoding is PositionEncoding.UTF8:
        return len(encode(text))
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


def column_to_byte(line: bytes, character: int, encoding: PositionEncoding) -> int:
    """Byte offset within ``line`` (its text without the line break) of an LSP ``character``; clamped to the line.

    A character that falls inside a surrogate pair or a UTF-8 sequence snaps to the start of that code point.
    """
    if character <= 0:
        return 0
    if encoding is PositionEncoding.UTF8:
        offset = min(character, len(line))
        while 0 < offset < len(line) and (line[offset] & 0xC0) == 0x80:
            offset -= 1
        return offset
    if line.isascii():
        return min(character, len(line))
    units = 0
    offset = 0
    for char in decode(line):
        width = 2 if encoding is PositionEncoding.UTF16 and ord(char) > 0xFFFF else 1
        if units + width > character:
            break
        units += width
        offset += len(encode(char)) if ord(char) > 0x7F else 1
    return offset


def byte_to_column(line: bytes, offset: int, encoding: PositionEncoding) -> int:
    """LSP ``character`` of a byte ``offset`` within ``line``; an offset inside a character counts from its start."""
    offset = max(0, min(offset, len(line)))
    while 0 < offset < len(line) and (line[offset] & 0xC0) == 0x80:
        offset -= 1
    if encoding is PositionEncoding.UTF8 or line.isascii():
        return offset
    return units_in(decode(line[:offset]), encoding)


def _line_starts(data: bytes, begin: int, end: int) -> list[int]:
    """Offsets just after each line break found in ``data[begin:end]``."""
    return [match.end() for match in _LINE_BREAK.finditer(data, begin, end)]


@dataclass(frozen=True)
class _Block:
    first_line: int
    base: int
    starts: tuple[int, ...]
    """Line starts relative to ``base``; the first is always 0."""


class LineIndex:
    """Where each line of a document starts, by byte offset. Immutable; :meth:`edited` returns a new index."""

    __slots__ = ("_blocks", "_firsts", "_bases", "line_count", "length")

    def __init__(self, blocks: list[_Block], length: int) -> None:
        self._blocks = blocks
        self._firsts = [block.first_line for block in blocks]
        self._bases = [block.base for block in blocks]
        last = blocks[-1]
        self.line_count = last.first_line + len(last.starts)
        self.length = length

    @classmethod
    def of(cls, data: bytes) -> LineIndex:
        return cls(_blocks_from([0, *_line_starts(data, 0, len(data))], 0), len(data))

    def line_start(self, line: int) -> int:
        """Byte offset where ``line`` starts; lines past the end start at the end of the document."""
        if line >= self.line_count:
            return self.length
        block = self._blocks[bisect.bisect_right(self._firsts, line) - 1]
        return block.base + block.starts[line - block.first_line]

    def line_of(self, offset: int) -> int:
        """The line that contains byte ``offset``."""
        index = bisect.bisect_right(self._bases, offset) - 1
        block = self._blocks[max(index, 0)]
        return block.first_line + bisect.bisect_right(block.starts, offset - block.base) - 1

    def line_bytes(self, data: bytes, line: int) -> bytes:
        """The bytes of ``line`` without its line break."""
        start = self.line_start(line)
        end = self.line_start(line + 1) if line + 1 < self.line_count else self.length
        text = data[start:end]
        if text.endswith(b"\r\n"):
            return text[:-2]
        if text.endswith((b"\n", b"\r")):
            return text[:-1]
        return text

    def edited(self, new_data: bytes, start: int, old_end: int, new_end: int) -> LineIndex:
        """The index of ``new_data``: this document with ``[start, old_end)`` replaced by ``[start, new_end)``.

        Only the lines around the edit are scanned again (from the line before it to two lines after it, which
        covers a CRLF being split or joined); the other line starts are reused, shifted by the size change.
        """
        delta = new_end - old_end
        first_line = max(self.line_of(start) - 1, 0)
        last_line = min(self.line_of(old_end) + 2, self.line_count)  # lines [first_line, last_line) are rescanned
        first_block = bisect.bisect_right(self._firsts, first_line) - 1
        last_block = bisect.bisect_right(self._firsts, last_line - 1) - 1
        head, tail = self._blocks[first_block], self._blocks[last_block]
        region_begin = self.line_start(first_line)
        old_region_end = self.line_start(last_line) if last_line < self.line_count else self.length
        scanned = _line_starts(new_data, region_begin, old_region_end + delta)
        if last_line < self.line_count:
            scanned.pop()  # the start of line ``last_line``, which comes from the tail below
        tail_from = last_line - tail.first_line
        starts = [
            *(head.base + offset for offset in head.starts[:first_line - head.first_line]),
            region_begin,
            *scanned,
            *(tail.base + offset + delta for offset in tail.starts[tail_from:]),
        ]
        replaced = _blocks_from(starts, head.first_line)
        line_shift = len(starts) - (tail.first_line + len(tail.starts) - head.first_line)
        rest = [
            _Block(block.first_line + line_shift, block.base + delta, block.starts)
            for block in self._blocks[last_block + 1:]
        ]
        return LineIndex(self._blocks[:first_block] + replaced + rest, len(new_data))


def _blocks_from(starts: list[int], first_line: int) -> list[_Block]:
    blocks = []
    for index in range(0, len(starts), _BLOCK_LINES):
        chunk = starts[index:index + _BLOCK_LINES]
        base = chunk[0]
        blocks.append(_Block(first_line + index, base, tuple(start - base for start in chunk)))
    return blocks
