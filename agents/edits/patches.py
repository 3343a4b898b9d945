"""Patches: a model's replacement for a node, fitted to the document, checked, and cut into minimal text edits.

A model's code rarely sits where it should: it is dedented, or re-indented with tabs, or wrapped in the
surrounding line, or it goes on past the node with the code that follows it. :func:`without_repeated_context` drops
what the model repeated of the text around the node; :func:`fit_replacement` re-indents it to the node's column.
:func:`verify_patch` applies it to the snapshot's bytes and parses the result: a patch that adds ERROR/MISSING
nodes, that changes nothing, or that breaks a rule of :mod:`.invariants` (a lost definition, a line twice, a reply
that is not code) is rejected with a reason the next round can read. :func:`minimal_edits` turns an accepted patch
into the few text edits that really differ, so an editor's undo, cursor and other text are disturbed as little as
possible.
"""

from __future__ import annotations

import difflib
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from ..syntax.languages import parser
from ..syntax.positions import decode, encode
from ..syntax.problems import syntax_problems
from ..syntax.snapshot import DocumentSnapshot
from .invariants import broken_invariant


@dataclass(frozen=True)
class ByteEdit:
    """Replace ``[start_byte, end_byte)`` of the snapshot's bytes with ``new_text``."""

    start_byte: int
    end_byte: int
    new_text: str


def patched_text(source: bytes, edits: Sequence[ByteEdit]) -> str:
    """``source`` with ``edits`` (non-overlapping, offsets into ``source``) applied, as text."""
    for edit in sorted(edits, key=lambda e: e.start_byte, reverse=True):
        source = source[:edit.start_byte] + edit.new_text.encode("utf-8", "surrogatepass") + source[edit.end_byte:]
    return source.decode("utf-8", "surrogatepass")


@dataclass(frozen=True)
class Patch:
    """A replacement for ``[start_byte, end_byte)`` of one snapshot version."""

    uri: str
    version: int
    start_byte: int
    end_byte: int
    new_text: str


@dataclass(frozen=True)
class PatchVerdict:
    accepted: bool
    reason: str
    edits: tuple[ByteEdit, ...] = ()
    new_source: bytes = b""


def _indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


MIN_REPEATED_LINES = 2
"""A reply's first or last lines are taken for a repeat of the text around the target only from this many non-blank
lines on: one line alike (a ``return``, a closing bracket) is as likely meant as repeated."""


def without_repeated_context(snapshot: DocumentSnapshot, start_byte: int, end_byte: int, code: str) -> str:
    """``code`` without the lines it repeats of the document right after ``end_byte`` (or right before
    ``start_byte``). Asked to fix a function's header, a model answers with the whole function: put in place of the
    header, its body would appear twice. Lines compare without their indentation; at least
    :data:`MIN_REPEATED_LINES` non-blank ones must agree, and some code must remain."""
    lines = code.replace("\r\n", "\n").strip("\n").split("\n")
    after = [line.strip() for line in decode(snapshot.source[end_byte:]).splitlines() if line.strip()]
    before = [line.strip() for line in decode(snapshot.source[:start_byte]).splitlines() if line.strip()]
    lines = _drop_repeat(lines, after, from_end=True)
    lines = _drop_repeat(lines, before, from_end=False)
    return "\n".join(lines)


def _drop_repeat(lines: list[str], context: list[str], from_end: bool) -> list[str]:
    """Drop the longest run of ``lines``' last (or first) non-blank lines that equals the start of the text after
    the target (``context`` read forwards), or the end of the text before it."""
    kept = [index for index, line in enumerate(lines) if line.strip()]
    for count in range(len(kept) - 1, MIN_REPEATED_LINES - 1, -1):
        chosen = kept[-count:] if from_end else kept[:count]
        stripped = [lines[index].strip() for index in chosen]
        if stripped == (context[:count] if from_end else context[-count:]):
            return lines[:chosen[0]] if from_end else lines[chosen[-1] + 1:]
    return lines


def fit_replacement(snapshot: DocumentSnapshot, start_byte: int, end_byte: int, code: str) -> str:
    """The model's ``code`` re-indented to sit at ``start_byte`` (whose line's indentation it takes on)."""
    line_start = snapshot.lines.line_start(snapshot.lines.line_of(start_byte))
    prefix = decode(snapshot.source[line_start:start_byte])
    base_indent = _indent_of(prefix)
    original = decode(snapshot.source[start_byte:end_byte])
    code = code.replace("\r\n", "\n").strip("\n")
    if not code.strip():
        return ""
    dedented = textwrap.dedent(code)
    lines = dedented.split("\n")
    fitted = [lines[0]] + [(base_indent + line) if line.strip() else "" for line in lines[1:]]
    result = "\n".join(fitted)
    if "\r\n" in original or (b"\r\n" in snapshot.source and "\n" in result):
        result = result.replace("\n", "\r\n")
    if original.endswith(("\n", "\r\n")) and not result.endswith("\n"):
        result += "\r\n" if original.endswith("\r\n") else "\n"
    return result


def minimal_edits(old: str, new: str, base_byte: int) -> list[ByteEdit]:
    """The smallest line-level edits that turn ``old`` (which starts at ``base_byte``) into ``new``."""
    old_lines = old.splitlines(keepends=True)
    new_lines = new.splitlines(keepends=True)
    offsets = [0]
    for line in old_lines:
        offsets.append(offsets[-1] + len(encode(line)))
    edits = []
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    for tag, a_start, a_end, b_start, b_end in matcher.get_opcodes():
        if tag == "equal":
            continue
        edits.append(ByteEdit(base_byte + offsets[a_start], base_byte + offsets[a_end],
                              "".join(new_lines[b_start:b_end])))
    return edits


def verify_patch(snapshot: DocumentSnapshot, patch: Patch, focus: tuple[int, int] | None = None) -> PatchVerdict:
    """Accept a patch only if it is for this snapshot, changes something, adds no syntax error and keeps what the
    user's code defines (:mod:`.edit_invariants`; ``focus`` is the range of the diagnostic being fixed, if any)."""
    if patch.uri != snapshot.uri or patch.version != snapshot.version:
        return PatchVerdict(False, f"the patch is for version {patch.version}, the document is at {snapshot.version}")
    if not (0 <= patch.start_byte <= patch.end_byte <= len(snapshot.source)):
        return PatchVerdict(False, "the patch lies outside the document")
    old = decode(snapshot.source[patch.start_byte:patch.end_byte])
    if old == patch.new_text or old.strip() == patch.new_text.strip():
        return PatchVerdict(False, "the proposed code is identical to the current code")
    if not patch.new_text.strip():
        return PatchVerdict(False, "the proposed code is empty")
    new_source = snapshot.source[:patch.start_byte] + encode(patch.new_text) + snapshot.source[patch.end_byte:]
    if snapshot.language is not None:
        tree = parser(snapshot.language).parse(new_source)
        before = syntax_problems(snapshot.tree, snapshot.source)
        after = syntax_problems(tree, new_source)
        new_end = patch.start_byte + len(encode(patch.new_text))
        inside = [p for p in after if p.start_byte <= new_end and p.end_byte >= patch.start_byte]
        if inside or len(after) > len(before):
            first = (inside or after)[0]
            line = new_source.count(b"\n", 0, first.start_byte) + 1
            return PatchVerdict(False, f"the patched code does not parse: {first.message} on line {line}")
        broken = broken_invariant(snapshot, patch.start_byte, patch.end_byte, patch.new_text, new_source, tree, focus)
        if broken:
            return PatchVerdict(False, broken)
    edits = minimal_edits(old, patch.new_text, patch.start_byte)
    return PatchVerdict(True, "parses, stays inside the target", tuple(edits), new_source)
