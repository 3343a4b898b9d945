"""Review's search for a one-token repair, asked when the candidate fixes of a round failed the unit's own examples.

The flow: the unit around the target must be a Python function with examples of its own (``>>>`` in its docstring or
beside it: diagnosis's written examples are too often wrong to choose a repair alone, they only rank it);
:func:`~..edits.one_token_edits.one_token_edits` lists its variants nearest first to diagnosis's suspect range;
:func:`~..edits.variant_trials.try_variants` runs the examples on the unchanged unit and on each variant in one sandbox
process. Only when the unchanged unit fails an example (the examples show the bug) do the variants that pass them all
count, and only when at most :data:`MAX_PASSING` do; among those, one whose changed line a generation candidate also
wrote comes first (agreement), then one under which the examples keep the path they take now
(:meth:`~..edits.variant_trials.Trials.ranked`), then the order of the list. The chosen variant is then checked like
any candidate (``check``: it parses, keeps every definition, runs the examples again and diagnosis's written ones for
evidence).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace

from ..edits.examples import examples_for, file_path_of
from ..edits.one_token_edits import TokenEdit, one_token_edits
from ..edits.patches import Patch
from ..edits.variant_trials import try_variants
from ..syntax.code_units import python_function_at
from .payloads import Proposal, SearchedRepair, SearchRepair, Verification, VerifyPatch
from .written_examples import function_name_at

MAX_PASSING = 3
"""More variants than this passing the examples means the examples do not pin the fix down: none is proposed (on
QuixBugs and toolz mutants, four or more passing were mostly wrong; up to three, the first was mostly right)."""

Check = Callable[[VerifyPatch], Awaitable[Verification]]


async def search_repair(subtask: SearchRepair, check: Check) -> SearchedRepair:
    """Find, check and propose a one-token repair (see the module docstring); a rejection says why there is none."""
    snapshot = subtask.snapshot
    node = python_function_at(snapshot, subtask.allowed_start, subtask.allowed_end)
    function_name = function_name_at(snapshot, subtask.allowed_start, subtask.allowed_end)
    if node is None or function_name is None:
        return _none("one-token repairs are tried only for a Python function")
    text = snapshot.source.decode("utf-8", "surrogatepass")
    examples = examples_for(text, function_name)
    if not examples:  # diagnosis's written examples are too often wrong to choose a repair alone: they only rank
        return _none(f"{function_name} has no examples of its own to try repairs against")
    lines = snapshot.lines
    suspect = (lines.line_of(subtask.suspect_start), lines.line_of(max(subtask.suspect_start, subtask.suspect_end)))
    edits = one_token_edits(snapshot.source, node, suspect)
    trials = await try_variants(text, edits, examples, file_path_of(snapshot.uri), stop_after=MAX_PASSING + 1)
    if not trials.shows_bug:
        return _none(f"{function_name} passes its {len(examples)} example(s) as it is: they cannot tell a repair")
    if not trials.passing:
        return _none(f"none of {trials.tried} one-token repairs of {function_name} passes its examples")
    if len(trials.passing) > MAX_PASSING:  # the examples do not pin the fix down: generation hears the options
        source = snapshot.source
        options = "; ".join(f"`{_old_line(source, edits[i])}` -> `{_changed_line(source, edits[i])}`"
                            for i in trials.passing)
        return SearchedRepair(Verification(False, f"more than {MAX_PASSING} one-token repairs of {function_name} pass "
                                                  f"its {len(examples)} example(s)"),
                              hint=f"its examples pass after any one of these one-line changes (use the one that "
                                   f"fixes the cause, or none): {options}")
    written = {" ".join(line.split()) for candidate in subtask.candidate_texts for line in candidate.splitlines()}
    chosen = min(trials.ranked(), key=lambda index: _changed_line(snapshot.source, edits[index]) not in written)
    edit = edits[chosen]
    source = snapshot.source
    new_text = (source[node.start_byte:edit.start_byte] + edit.new_text.encode("utf-8", "surrogatepass")
                + source[edit.end_byte:node.end_byte]).decode("utf-8", "surrogatepass")
    proposal = Proposal(Patch(snapshot.uri, snapshot.version, node.start_byte, node.end_byte, new_text),
                        note=f"one-token repair: {edit.what}")
    verification = await check(VerifyPatch(snapshot, proposal, subtask.allowed_start, subtask.allowed_end,
                                            run_code=True, examples=subtask.examples))
    found = (f"a one-token repair passes its {len(examples)} example(s): {edit.what} "
             f"({len(trials.passing)} of {trials.tried} variants tried pass)")
    return SearchedRepair(replace(verification, reason=f"{found}; {verification.reason}"), proposal)


def _old_line(source: bytes, edit: TokenEdit) -> str:
    """The line the edit changes, as it reads now (whitespace collapsed)."""
    return _changed_line(source, TokenEdit(edit.start_byte, edit.start_byte, "", ""))


def _changed_line(source: bytes, edit: TokenEdit) -> str:
    """The line the edit changes, as it reads after the edit (whitespace collapsed)."""
    start = source.rfind(b"\n", 0, edit.start_byte) + 1
    end = source.find(b"\n", edit.end_byte)
    line = source[start:edit.start_byte] + edit.new_text.encode("utf-8", "surrogatepass") + source[
        edit.end_byte:end if end >= 0 else len(source)]
    return " ".join(line.decode("utf-8", "replace").split())


def _none(reason: str) -> SearchedRepair:
    return SearchedRepair(Verification(False, reason))
