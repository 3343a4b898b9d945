"""What changed since HEAD (or any git ref, or any base text): hunks of a document mapped onto its units.

GitPython finds the repository and reads the file as committed at HEAD (or another ref); the document's current text
is compared with it line by line (the same hunks ``git diff -U0`` shows, but against the editor's text, saved or not),
or with a base text the caller already holds (:func:`units_changed_from`). Each hunk
lands on its innermost function; a hunk in a class outside its methods yields the methods it touches and a slice of
the class-level lines it changed (a class is never re-sent whole for an attribute); a hunk outside any unit yields a
module-level slice of the lines it touched. A file outside git, or untracked, has every unit "changed".
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import unquote, urlparse

from ..syntax.code_units import CodeUnit, code_units, innermost_unit, unit_node_at
from ..syntax.fingerprint import code_tokens, fingerprint
from ..syntax.snapshot import DocumentSnapshot

log = logging.getLogger(__name__)
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
"""Line breaks as LSP and the snapshot's line index count them (``str.splitlines`` also splits at form feeds)."""


@dataclass(frozen=True)
class Hunk:
    """Lines ``[first_line, last_line)`` of the current text differ from HEAD (an empty range marks a deletion);
    they replaced lines ``[head_first, head_last)`` of HEAD's text."""

    first_line: int
    last_line: int
    head_first: int = 0
    head_last: int = 0


@dataclass(frozen=True)
class ChangedUnits:
    """The units to review and why: ``basis`` is "git" (hunks against HEAD) or the reason the whole file counts."""

    units: tuple[CodeUnit, ...]
    basis: str


def path_of(uri: str) -> Path | None:
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return None
    return Path(unquote(parsed.path))


def text_at(path: Path, ref: str = "HEAD") -> tuple[str | None, str]:
    """The file's text at git ``ref`` (``HEAD``, a branch, ``origin/main``...), or None with the reason: not in a
    repository, "no commits yet" / "no commit REF", "untracked" / "not in REF", or "git failed: ..."."""
    try:
        import git  # GitPython: imported on first use, not at server start
    except ImportError:  # pragma: no cover - a declared dependency
        return None, "GitPython is not installed"
    try:
        repo = git.Repo(path.parent, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return None, "not in a git repository"
    except git.GitError as error:
        return None, f"git failed: {error}"
    try:
        if not repo.working_tree_dir:
            return None, "a bare repository"
        try:
            relative = path.resolve().relative_to(Path(repo.working_tree_dir).resolve()).as_posix()
        except ValueError:
            return None, "not in a git repository"
        try:
            commit = repo.commit(ref)
        except (ValueError, git.BadName) as error:
            return None, "no commits yet" if ref == "HEAD" else f"no commit {ref!r} ({error})"
        blob = commit.tree / relative
        return blob.data_stream.read().decode("utf-8", "surrogateescape"), "git"
    except KeyError:
        return None, "untracked" if ref == "HEAD" else f"not in {ref}"
    except (git.GitError, OSError) as error:
        return None, f"git failed: {error}"
    finally:
        repo.close()


def hunks(old: str, new: str) -> list[Hunk]:
    """Changed line ranges of ``new`` relative to ``old`` (like ``git diff -U0``)."""
    a, b = _LINE_BREAK.split(old), _LINE_BREAK.split(new)
    same = min(len(a), len(b))
    head = next((index for index in range(same) if a[index] != b[index]), same)  # the common lines around the
    tail = next((index for index in range(same - head) if a[-1 - index] != b[-1 - index]), same - head)  # change
    matcher = difflib.SequenceMatcher(a=a[head:len(a) - tail], b=b[head:len(b) - tail], autojunk=False)
    return [Hunk(head + b_start, head + b_end, head + a_start, head + a_end)
            for tag, a_start, a_end, b_start, b_end in matcher.get_opcodes() if tag != "equal"]


def every_unit(snapshot: DocumentSnapshot, basis: str = "whole file") -> ChangedUnits:
    """All top-level units of a snapshot (the whole module as one slice when it has none)."""
    units = tuple(_outermost(code_units(snapshot))) or tuple(_module_slices(snapshot, [
        Hunk(0, snapshot.lines.line_count)]))
    return ChangedUnits(tuple(_fingerprinted(snapshot, units)), basis)


def changed_units(snapshot: DocumentSnapshot, base: str = "HEAD") -> ChangedUnits:
    """The units of a snapshot that differ from its file at git ``base`` (all units when there is no version there
    to compare with: outside git, untracked, no commits)."""
    path = path_of(snapshot.uri)
    old, basis = text_at(path, base) if path is not None else (None, "not a file")
    return units_changed_from(snapshot, old, basis)


def units_changed_from(snapshot: DocumentSnapshot, base_text: str | None, basis: str | None = None) -> ChangedUnits:
    """The units of a snapshot that differ from ``base_text`` (every unit when it is None): what
    :func:`changed_units` does once it has the text to compare with, for callers that carry it themselves (a batch
    worker gets a file's base text in its task, with no git at hand)."""
    if base_text is None:
        return every_unit(snapshot, basis or "whole file")
    base = DocumentSnapshot.open(snapshot.uri, 0, base_text, snapshot.language_name)
    selected: dict[tuple[int, int], CodeUnit] = {}
    all_units = code_units(snapshot)
    for hunk in hunks(base_text, snapshot.text):
        if _cosmetic(snapshot, base, hunk):
            continue
        for unit in _units_of_hunk(snapshot, hunk, all_units):
            selected[(unit.start_byte, unit.end_byte)] = unit
    return ChangedUnits(tuple(_fingerprinted(snapshot, [selected[key] for key in sorted(selected)])),
                        basis or "the given text")


def _line_range(snapshot: DocumentSnapshot, first: int, last: int) -> tuple[int, int]:
    end = snapshot.lines.line_start(last) if last < snapshot.lines.line_count else len(snapshot.source)
    return snapshot.lines.line_start(first), end


def _cosmetic(snapshot: DocumentSnapshot, head: DocumentSnapshot, hunk: Hunk) -> bool:
    """Whether a hunk changed only layout, comments or annotations (its code has the base's fingerprint)."""
    if snapshot.tree is None or head.tree is None:
        return False
    return code_tokens(snapshot, *_line_range(snapshot, hunk.first_line, hunk.last_line)) == code_tokens(
        head, *_line_range(head, hunk.head_first, hunk.head_last))


def _fingerprinted(snapshot: DocumentSnapshot, units: Iterable[CodeUnit]) -> list[CodeUnit]:
    """The units keyed by what their code does, so a unit only re-annotated or re-commented keeps its review."""
    return [replace(unit, fingerprint=fingerprint(snapshot, unit.start_byte, unit.end_byte)) for unit in units]


def _units_of_hunk(snapshot: DocumentSnapshot, hunk: Hunk, all_units: list[CodeUnit]) -> list[CodeUnit]:
    """What a hunk changed: its innermost function; in a class, the methods it touches and a slice of the class-level
    lines it changed (not the whole class); at module level, a slice of its lines."""
    start = snapshot.lines.line_start(hunk.first_line)
    end = snapshot.lines.line_start(max(hunk.last_line, hunk.first_line + 1)) - 1
    unit = innermost_unit(snapshot, start, max(start, end))
    if unit is None:
        return _module_slices(snapshot, [hunk])
    if _is_function(snapshot, unit):
        return [unit]
    members = [member for member in _members(unit, all_units) if member.start_byte <= end and member.end_byte > start]
    covered = {line for member in members for line in range(snapshot.lines.line_of(member.start_byte),
                                                             snapshot.lines.line_of(member.end_byte) + 1)}
    rest = [line for line in range(hunk.first_line, hunk.last_line) if line not in covered]
    runs = [Hunk(first, last + 1) for first, last in _runs(rest)]
    return members + _module_slices(snapshot, runs, f"class {unit.name}")


def _is_function(snapshot: DocumentSnapshot, unit: CodeUnit) -> bool:
    node = unit_node_at(snapshot, unit.start_byte, unit.end_byte)
    if node is not None and node.type == "decorated_definition":
        node = node.child_by_field_name("definition") or node
    kind = node.type if node is not None else unit.kind
    return kind.startswith(("function", "method", "constructor", "generator"))


def _members(container: CodeUnit, all_units: list[CodeUnit]) -> list[CodeUnit]:
    """The units directly inside ``container`` (its methods, not the functions nested in them)."""
    inside = [u for u in all_units if container.start_byte <= u.start_byte and u.end_byte <= container.end_byte
              and (u.start_byte, u.end_byte) != (container.start_byte, container.end_byte)]
    return [u for u in inside if not any(o is not u and o.start_byte <= u.start_byte and u.end_byte <= o.end_byte
                                         for o in inside)]


def _runs(lines: list[int]) -> list[tuple[int, int]]:
    """Sorted line numbers as (first, last) runs of consecutive lines."""
    runs: list[tuple[int, int]] = []
    for line in lines:
        if runs and runs[-1][1] == line - 1:
            runs[-1] = (runs[-1][0], line)
        else:
            runs.append((line, line))
    return runs


def _outermost(units: list[CodeUnit]) -> list[CodeUnit]:
    """Top-level functions and classes; methods of a very large class are taken one by one instead."""
    result: list[CodeUnit] = []
    for unit in units:
        if any(outer.start_byte <= unit.start_byte and unit.end_byte <= outer.end_byte for outer in result):
            continue
        result.append(unit)
    return result


def _module_slices(snapshot: DocumentSnapshot, module_hunks: list[Hunk], owner: str = "module") -> list[CodeUnit]:
    """Module-level (or class-level) code touched by hunks, as pseudo-units of the lines involved (non-empty ones).

    A slice is named by its owner, not by its line numbers: its content hash (and so its cached review) must not
    change when an edit above it moves it down."""
    slices = []
    for hunk in module_hunks:
        if hunk.first_line >= hunk.last_line:
            continue
        start = snapshot.lines.line_start(hunk.first_line)
        end = snapshot.lines.line_start(hunk.last_line)
        text = snapshot.source[start:end].decode("utf-8", "surrogatepass")
        if text.strip():
            slices.append(CodeUnit("module_code", f"{owner}-level code", start, end, text))
    return slices
