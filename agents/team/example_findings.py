"""Findings from a function's own examples: on review, where code may run, a function whose ``>>>`` examples fail
has a defect that execution has already confirmed, and no model call is needed to say so.

The flow: run the unit's examples in the sandbox (:func:`..edits.examples.run_examples`); when one fails, look for where
the defect is, by the changes that make every example pass:

1. the one-token repairs (:mod:`..edits.one_token_edits`, run by :mod:`..edits.variant_trials`): when at most
   :data:`.repair_search.MAX_PASSING` pass, the finding sits on the line of the first that keeps the examples on their
   path (:meth:`..edits.variant_trials.Trials.ranked`) and names the change; when more do but all on one line, it
   sits on that line;
2. otherwise, with ``repair`` (the review agent's: generation rewrites the unit, review keeps it only when every example
   then passes), the first line a repair of at most :data:`MAX_REPAIR_LINES` lines changes, named;
3. otherwise, when the example raised inside the function, the line it raised from; else the function's name.

The coordinator shows it as a Warning (an Error when the example raised) with the example as its evidence
(:func:`.cross_examination.judge`): the user's own docstring is the oracle, so it needs no agent's vote.
"""

from __future__ import annotations

import io
import tokenize
from collections.abc import Awaitable, Callable, Sequence

from ..edits.examples import examples_for, file_path_of, run_examples
from ..edits.one_token_edits import one_token_edits
from ..edits.patches import ByteEdit, patched_text
from ..edits.variant_trials import try_variants
from ..syntax.code_units import CodeUnit, python_function_at
from ..syntax.snapshot import DocumentSnapshot
from .cross_examination import EXAMPLES_CODE
from .payloads import Execution, Finding
from .repair_search import MAX_PASSING

Repair = Callable[[str], Awaitable[Sequence[ByteEdit]]]
"""Given the failing example's evidence, edits of the unit under which every example passes (checked), or none."""

MAX_REPAIR_LINES = 3
"""A checked repair that changes more lines than this rewrote the function: it does not say where the defect is."""


async def example_finding(snapshot: DocumentSnapshot, unit: CodeUnit, timeout_s: float,
                          repair: Repair | None = None) -> Finding | None:
    """The finding of ``unit``'s first failing example, located as the module docstring says; None when its examples
    pass, there are none, or it is not a Python function."""
    node = python_function_at(snapshot, unit.start_byte, unit.end_byte)
    name = node.child_by_field_name("name") if node is not None else None
    if node is None or name is None:
        return None
    text, path = snapshot.text, file_path_of(snapshot.uri)
    run = await run_examples(text, unit.name, path, timeout_s)
    if not run.failed:
        return None
    failure = run.first_failure
    evidence = failure.evidence() if failure is not None else run.summary
    start, end, hint = name.start_byte, name.end_byte, ""
    edits = one_token_edits(snapshot.source, node)
    trials = await try_variants(text, edits, examples_for(text, unit.name), path, stop_after=MAX_PASSING + 1)
    lines = snapshot.lines
    passing_lines = {lines.line_of(edits[index].start_byte) for index in trials.passing}
    if trials.shows_bug and trials.passing and (len(trials.passing) <= MAX_PASSING or len(passing_lines) == 1):
        edit = edits[trials.ranked()[0]]
        line = lines.line_of(edit.start_byte)
        start, end = _line_code(snapshot, line)
        hint = (f"; with {edit.what} every example passes" if len(trials.passing) <= MAX_PASSING
                else f"; several one-token changes on line {line + 1} make every example pass")
    raised_on = failure.line if failure is not None and failure.line is not None else None
    raised_in_body = raised_on is not None and _in_body(snapshot, unit, raised_on - 1)
    if not hint and repair is not None:
        located = _repaired_line(snapshot, unit, await repair(evidence))
        if located is not None:
            line, new_code = located
            start, end = _line_code(snapshot, line)
            hint = f"; with `{new_code}` on line {line + 1} every example passes"
            if raised_in_body:
                hint += f" (it raises on line {raised_on})"
    if not hint and raised_in_body and raised_on is not None:
        start, end = _line_code(snapshot, raised_on - 1)
        hint = f"; it raises on line {raised_on}"
    quote = snapshot.source[start:end].decode("utf-8", "replace")
    execution = Execution("raised" if failure is not None and failure.raised else "returned",
                          failure.got if failure is not None else run.summary,
                          "crash" if failure is not None and failure.raised else "confirmed")
    return Finding(start, end, f"{unit.name} fails its own example{hint}", "warning", EXAMPLES_CODE, quote,
                   unit.name, None, execution, 1.0, evidence)


def _repaired_line(snapshot: DocumentSnapshot, unit: CodeUnit,
                   edits: Sequence[ByteEdit]) -> tuple[int, str] | None:
    """The first 0-based line a checked repair changes and its code after the repair, when the repair stays inside
    the unit and changes at most :data:`MAX_REPAIR_LINES` lines; else None."""
    if not edits or any(e.start_byte < unit.start_byte or e.end_byte > unit.end_byte for e in edits):
        return None
    lines = snapshot.lines
    first = min(lines.line_of(e.start_byte) for e in edits)
    changed = sum(max(_line_count(snapshot.source[e.start_byte:e.end_byte]),
                      _line_count(e.new_text.encode("utf-8", "surrogatepass"))) for e in edits)
    if changed > MAX_REPAIR_LINES:
        return None
    new_line = patched_text(snapshot.source, edits).split("\n")[first]  # the lines before it are unchanged
    new_code = _without_comment(new_line).strip()
    if not new_code:
        return None
    return first, new_code if len(new_code) <= 60 else new_code[:57] + "..."


def _without_comment(line: str) -> str:
    """A line of Python without its trailing comment (a model's repair often explains itself in one); the line as it
    is when it does not tokenize alone."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(line).readline))
    except (tokenize.TokenError, SyntaxError):
        return line
    comment = next((token for token in tokens if token.type == tokenize.COMMENT), None)
    return line if comment is None else line[:comment.start[1]]


def _line_count(text: bytes) -> int:
    """How many lines ``text`` (whole lines, as line-level edits hold) spans."""
    return text.count(b"\n") + (0 if not text or text.endswith(b"\n") else 1)


def _in_body(snapshot: DocumentSnapshot, unit: CodeUnit, line: int) -> bool:
    """Whether the 0-based ``line`` lies in the unit after its first line (where an example raised inside it)."""
    lines = snapshot.lines
    return lines.line_of(unit.start_byte) < line <= lines.line_of(unit.end_byte) and line < lines.line_count


def _line_code(snapshot: DocumentSnapshot, line: int) -> tuple[int, int]:
    """The byte range of the 0-based ``line``'s code, without its indentation or line break."""
    start = snapshot.lines.line_start(line)
    end = snapshot.source.find(b"\n", start)
    end = len(snapshot.source) if end < 0 else end
    text = snapshot.source[start:end]
    return start + len(text) - len(text.lstrip()), end
