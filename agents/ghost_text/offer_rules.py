"""When to ask for ghost text, how much to show, and which offers to throw away — rules read from the peers that
users keep on (llama.vim's ``fim_render``, Tabby's ``postprocess/``, Continue's ``postprocessing/``).

- **When**: no automatic request when more than :data:`MAX_TEXT_RIGHT` characters stand right of the cursor.
- **How much**: one line when the cursor is mid-line or ends a line that opens no block; several lines at the end
  of a block-opening line or on an empty line, cut at the first line indented below the cursor's block and where
  the offer starts repeating the lines after the cursor.
- **Discarded**: whitespace only, the rest of the line or the next lines again, the line above again, text that
  repeats itself (Tabby's repetition patterns, five near-identical lines).
- **Auto-closed brackets**: when the offer ends with what stands right of the cursor (``)`` that the editor
  closed), it replaces that text instead of doubling it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_TEXT_RIGHT = 8
MAX_LINES = 16
_BLOCK_OPENERS = (":", "{", "(", "[", "=>", "->", " do", " then")
_CLOSERS = set(")]}\"'`;:,")
_REPEATS = (re.compile(r"(.{3,}?)\1{5,}$"), re.compile(r"(.{10,}?)\1{3,}$"))


@dataclass(frozen=True)
class Shape:
    """How much to offer at this cursor: ``multi_line`` or not, and the indentation the offer must stay within
    (its lines after the first may not be indented less than ``min_indent``)."""

    multi_line: bool
    min_indent: int


@dataclass(frozen=True)
class Offer:
    """Text to insert at the cursor, replacing ``replace_chars`` characters right of it (an auto-closed bracket)."""

    text: str
    replace_chars: int = 0


def should_request(line_after: str, explicit: bool) -> bool:
    """Whether to ask the model: always when the user asked, otherwise not with text right of the cursor."""
    return explicit or len(line_after.strip()) <= MAX_TEXT_RIGHT


def shape_at(line_before: str, line_after: str) -> Shape:
    indent = _indent(line_before)
    if line_after.strip():
        return Shape(False, indent)
    if not line_before.strip():
        return Shape(True, len(line_before))
    if line_before.rstrip().endswith(_BLOCK_OPENERS):
        return Shape(True, indent + 1)
    return Shape(False, indent)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def trim(raw: str, shape: Shape, line_before: str, suffix: str) -> str:
    """The part of the model's text worth showing: one line, or the lines up to a dedent below the cursor's block
    or a repeat of the line after the cursor."""
    lines = raw.split("\n")
    if not shape.multi_line:
        return lines[0] if lines[0].strip() or len(lines) == 1 else ""
    kept = lines[:_kept(lines, shape, suffix)]
    while len(kept) > 1 and not kept[-1].strip():
        kept.pop()
    if not line_before.strip() and len(kept) > 1 and not kept[0].strip():
        kept = kept[1:]  # on an empty line, an offer that starts with a newline would leave that line empty
    return "\n".join(kept)


def finished(raw: str, shape: Shape, suffix: str) -> bool:
    """Whether the stream can be closed now: what more the model writes would be cut off by :func:`trim`."""
    lines = raw.split("\n")
    if not shape.multi_line:
        return len(lines) > 1
    complete = lines[:-1]  # the last line may still grow
    return len(lines) > MAX_LINES or _kept(complete, shape, suffix) < len(complete)


def _kept(lines: list[str], shape: Shape, suffix: str) -> int:
    """How many of ``lines`` a multi-line offer keeps."""
    next_lines = [line.strip() for line in suffix.split("\n")[1:] if line.strip()]
    for index, line in enumerate(lines[:MAX_LINES]):
        stripped = line.strip()
        if index == 0 or not stripped:
            continue
        if _indent(line) < shape.min_indent or (next_lines and stripped == next_lines[0] and len(stripped) > 1):
            return index
    return min(len(lines), MAX_LINES)


def discard_reason(offer: str, line_before: str, line_after: str, prefix: str, suffix: str) -> str | None:
    """Why the offer is not worth showing, or None when it is."""
    stripped = offer.strip()
    if not stripped:
        return "whitespace only"
    rest = line_after.strip()
    if rest and stripped == rest:
        return "repeats the rest of the line"
    next_lines = [line.strip() for line in suffix.split("\n")[1:] if line.strip()]
    offer_lines = [line.strip() for line in offer.split("\n") if line.strip()]
    if next_lines and offer_lines == next_lines[:len(offer_lines)]:
        return "repeats the next lines"
    previous = [line.strip() for line in prefix.split("\n")[:-1] if line.strip()]
    if not line_before.strip() and previous and len(offer_lines) == 1 and offer_lines[0] == previous[-1]:
        return "repeats the line above"
    last = offer.rstrip().rsplit("\n", 1)[-1]
    if any(pattern.search(last) for pattern in _REPEATS):
        return "repeats itself"
    if _near_identical_run(offer_lines) >= 5:
        return "repeats itself"
    return None


def _near_identical_run(lines: list[str]) -> int:
    longest = run = 1 if lines else 0
    for before, after in zip(lines, lines[1:], strict=False):
        run = run + 1 if _similar(before, after) else 1
        longest = max(longest, run)
    return longest


def _similar(a: str, b: str) -> bool:
    if a == b:
        return True
    common = sum(1 for x, y in zip(a, b, strict=False) if x == y)
    return common >= 0.9 * max(len(a), len(b))


def over_closers(offer: str, line_after: str) -> Offer:
    """The offer, replacing what it repeats of the closing brackets and quotes right of the cursor."""
    last = offer.rsplit("\n", 1)[-1]
    if line_after and last.endswith(line_after) and len(line_after.strip()) <= MAX_TEXT_RIGHT:
        return Offer(offer, len(line_after))
    closers = 0
    while closers < len(line_after) and line_after[closers] in _CLOSERS:
        closers += 1
    for size in range(closers, 0, -1):
        if last.endswith(line_after[:size]):
            return Offer(offer, size)
    return Offer(offer)
