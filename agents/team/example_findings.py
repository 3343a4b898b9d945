"""Findings from a function's own examples: on review, where code may run, a function whose ``>>>`` examples fail
has a defect that execution has already confirmed, and no model call is needed to say so.

The flow: run the unit's examples in the sandbox (:func:`..edits.examples.run_examples`); when one fails, look for where
the defect is — the one-token repairs that make every example pass (:mod:`..edits.one_token_edits`, run by
:mod:`..edits.variant_trials`): when at most :data:`.repair_search.MAX_PASSING` do, the finding sits on the line of the
first and names the change; when more do but all on one line, it sits on that line; when the example raised inside the
function, on the line it raised from; otherwise on the function's name.
The coordinator shows it as a Warning (an Error when the example raised) with the example as its evidence
(:func:`.cross_examination.judge`): the user's own docstring is the oracle, so it needs no agent's vote.
"""

from __future__ import annotations

from ..edits.examples import examples_for, file_path_of, run_examples
from ..edits.one_token_edits import one_token_edits
from ..edits.variant_trials import try_variants
from ..syntax.code_units import CodeUnit, python_function_at
from ..syntax.snapshot import DocumentSnapshot
from .cross_examination import EXAMPLES_CODE
from .payloads import Execution, Finding
from .repair_search import MAX_PASSING


async def example_finding(snapshot: DocumentSnapshot, unit: CodeUnit, timeout_s: float) -> Finding | None:
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
    start, end, hint = name.start_byte, name.end_byte, ""
    edits = one_token_edits(snapshot.source, node)
    trials = await try_variants(text, edits, examples_for(text, unit.name), path, stop_after=MAX_PASSING + 1)
    lines = snapshot.lines
    passing_lines = {lines.line_of(edits[index].start_byte) for index in trials.passing}
    if trials.shows_bug and trials.passing and (len(trials.passing) <= MAX_PASSING or len(passing_lines) == 1):
        edit = edits[trials.passing[0]]
        line = lines.line_of(edit.start_byte)
        start, end = _line_code(snapshot, line)
        hint = (f"; with {edit.what} every example passes" if len(trials.passing) <= MAX_PASSING
                else f"; several one-token changes on line {line + 1} make every example pass")
    failure = run.first_failure
    if not hint and failure is not None and failure.line is not None and _in_body(snapshot, unit, failure.line - 1):
        start, end = _line_code(snapshot, failure.line - 1)
        hint = f"; it raises on line {failure.line}"
    evidence = failure.evidence() if failure is not None else run.summary
    quote = snapshot.source[start:end].decode("utf-8", "replace")
    execution = Execution("raised" if failure is not None and failure.raised else "returned",
                          failure.got if failure is not None else run.summary,
                          "crash" if failure is not None and failure.raised else "confirmed")
    return Finding(start, end, f"{unit.name} fails its own example{hint}", "warning", EXAMPLES_CODE, quote,
                   unit.name, None, execution, 1.0, evidence)


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
