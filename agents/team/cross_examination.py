"""Cross-examination of review findings: what an executed claim proves, and how votes and evidence make a severity.

Review proposes a finding; diagnosis, challenged, answers with a ``Claim`` (a real defect or not, and a call that
shows it); where code may run, the claimed call is executed against the unit in the sandbox. Then:

- :func:`execution_verdict` reads the run: "crash" (it raised where a value was expected), "confirmed" (it returned
  what diagnosis said it would, and that is not what the docstring expects), "refuted" (it returned the expected
  value: the claim is wrong), "invalid" (the arguments do not fit the function's signature: the claim is about some
  other function), "inconclusive" (anything else: a model that mispredicts the code proves nothing);
- :func:`judge` computes the finding's confidence as the cooperation graph's merge of the votes — review's proposal
  along review -> diagnosis, diagnosis's answer along diagnosis -> review — and gives the highest severity whose
  evidence it has and whose threshold (``ReviewPolicy``) its confidence reaches: Error needs a crash, Warning a
  confirming run, Information only the votes (diagnosis's counts for the finding only when its call shows a
  difference: :func:`shows_defect`); a refuted or invalid finding is dropped whatever the votes, and one below every
  threshold is dropped or, by the ``unconfirmed`` setting, shown as a Hint. A finding made by running the
  function's own examples (:mod:`.example_findings`) needs no vote: a Warning, or an Error when the example raised.

Pure functions over frozen records: no model, no process, no broker.
"""

from __future__ import annotations

import ast
import math
from dataclasses import replace

from .cooperation import CooperationGraph, Output, Verdict
from .payloads import Claim, Finding, ReviewPolicy

SEVERITIES = ("error", "warning", "info", "hint")
EXAMPLES_CODE = "examples"
"""The code of a finding made by running the function's own examples (:mod:`.example_findings`), not proposed by
review's model: execution alone decides it."""
_HANG_WORDS = ("loop", "hang", "never", "forever", "timeout", "time out", "recursion", "infinite")


def literal(text: str) -> object:
    """``text`` as a Python literal; ``ValueError`` when it is not one."""
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as error:
        raise ValueError(f"not a Python literal: {text[:60]!r}") from error


def is_literal(text: str) -> bool:
    try:
        literal(text)
    except ValueError:
        return False
    return True


def shows_defect(claim: Claim) -> bool:
    """Whether diagnosis's answer backs the finding: it says the defect is real, and the call it names does not give
    what it says is expected (a claim whose expected and actual results are the same shows nothing)."""
    if not claim.real:
        return False
    if not claim.expected.strip() or not claim.actual.strip():
        return True
    return not _predicted(claim.actual, claim.expected)


def runnable(claim: Claim | None) -> bool:
    """Whether a claim names a call the sandbox can make: arguments that are all literals, and an expected value."""
    if claim is None or not shows_defect(claim) or not claim.expected.strip():
        return False
    try:
        tree = ast.parse(f"f({claim.args})", mode="eval").body
    except SyntaxError:
        return False
    if not isinstance(tree, ast.Call):
        return False
    try:
        for node in (*tree.args, *(k.value for k in tree.keywords)):
            ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False
    return True


def _same(got: object, want: object) -> bool:
    if isinstance(got, float) or isinstance(want, float):
        try:
            return math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9)  # type: ignore[arg-type]
        except TypeError:
            return False
    try:
        return bool(got == want)
    except (TypeError, ValueError, RecursionError):  # literals only: a comparison that cannot be made is "not equal"
        return False


def _predicted(value: str, claimed: str) -> bool:
    """Whether the call's result (its repr) is what diagnosis said the code gives."""
    try:
        return _same(literal(value), literal(claimed))
    except ValueError:
        return " ".join(value.split()) == " ".join(claimed.split())


def _names_exception(text: str) -> bool:
    return any(word in text for word in ("Error", "Exception", "raise", "crash"))


def execution_verdict(claim: Claim, status: str, value: str, matches: bool | None) -> str:
    """What running ``claim``'s call showed, from the sandbox's ``status``/``value``/``matches`` (see module doc)."""
    if status == "returned":
        if matches:
            return "refuted"
        if matches is False and _predicted(value, claim.actual):
            return "confirmed"
        return "inconclusive"
    if status == "raised":
        expected_error = _names_exception(claim.expected)
        if expected_error and value.split(":", 1)[0] in claim.expected:
            return "refuted"  # the docstring asks for this very exception
        return "crash" if not expected_error and _names_exception(claim.actual) else "inconclusive"
    if status == "timeout":
        said = f"{claim.actual} {claim.reason}".lower()
        return "confirmed" if any(word in said for word in _HANG_WORDS) else "inconclusive"
    if status == "bad_call":
        return "invalid"  # the function cannot be called so: the claim is about some other function
    return "inconclusive"


def confidence(graph: CooperationGraph, finding: Finding) -> tuple[float, tuple[str, ...]]:
    """The finding's confidence and the agents that agree with it: the merge of review's proposal (review ->
    diagnosis) and diagnosis's answer (diagnosis -> review) by the weights of those edges; 0 when rejection wins."""
    key = (finding.start_byte, finding.end_byte)
    votes: list[Output[Finding]] = [Output("review", key, finding, Verdict.PROPOSE, to="diagnosis")]
    if finding.claim is not None:
        verdict = Verdict.PROPOSE if shows_defect(finding.claim) else Verdict.REJECT
        votes.append(Output("diagnosis", key, finding, verdict, to="review"))
    try:
        (merged,) = graph.merge_by_weight(votes)
    except LookupError:  # an override removed an edge: the votes that would travel it count for nothing
        votes = [vote for vote in votes if _has_edge(graph, vote.agent, vote.to)]
        if not votes:
            return 0.0, ()
        (merged,) = graph.merge_by_weight(votes)
    if merged.verdict is Verdict.REJECT:
        return 0.0, ()
    return merged.weight, merged.sources


def _has_edge(graph: CooperationGraph, source: str, target: str) -> bool:
    try:
        graph.weight(source, target)
    except LookupError:
        return False
    return True


def judge(graph: CooperationGraph, finding: Finding, policy: ReviewPolicy) -> Finding | None:
    """The finding with its confidence, severity and evidence in words; None when it is not to be shown. A failing
    example of the function's own (``EXAMPLES_CODE``) is a Warning, or an Error when it raised, on that alone."""
    if finding.code == EXAMPLES_CODE and finding.execution is not None:
        severity = "error" if finding.execution.verdict == "crash" else "warning"
        return replace(finding, severity=severity, confidence=1.0,
                       message=f"{finding.message} ({finding.evidence})")
    verdict = finding.execution.verdict if finding.execution is not None else ""
    if verdict in ("refuted", "invalid"):
        return None
    score, agreeing = confidence(graph, finding)
    if verdict == "crash" and score >= policy.error_confidence:
        severity = "error"
    elif verdict in ("crash", "confirmed") and score >= policy.warning_confidence:
        severity = "warning"
    elif score >= policy.information_confidence:
        severity = "info"
    elif policy.unconfirmed == "hint":
        severity = "hint"
    else:
        return None
    evidence = describe(finding, agreeing)
    message = f"{finding.message} ({evidence})" if evidence else finding.message
    return replace(finding, severity=severity, confidence=round(score, 3), evidence=evidence, message=message)


def describe(finding: Finding, agreeing: tuple[str, ...]) -> str:
    """The evidence in words: "`mean([2, 4])` returns 2.0, docstring says 3.0" when it ran, else who agreed."""
    claim, run = finding.claim, finding.execution
    call = claim.call(finding.unit_name) if claim is not None else ""
    if claim is not None and run is not None and run.verdict in ("confirmed", "crash"):
        if run.status == "raised":
            return f"`{call}` raises {run.value}, expected {claim.expected}"
        if run.status == "timeout":
            return f"`{call}` does not finish ({run.value}), expected {claim.expected}"
        return f"`{call}` returns {run.value}, expected {claim.expected}"
    if claim is not None and claim.real and "diagnosis" in agreeing:
        shown = f": `{call}` would give {claim.actual}, expected {claim.expected}" if claim.args else ""
        ran = " (not run)" if run is None else f" (run: {run.verdict})"
        return f"review and diagnosis agree{shown}{ran}"
    return "unconfirmed: only review says so"


def evidence_data(finding: Finding) -> dict[str, object]:
    """The evidence as JSON for a diagnostic's ``data``: the confidence, the call and what happened."""
    data: dict[str, object] = {"confidence": finding.confidence, "summary": finding.evidence}
    if finding.claim is not None:
        data["call"] = finding.claim.call(finding.unit_name) if finding.claim.args else ""
        data["expected"] = finding.claim.expected
        data["claimed"] = finding.claim.actual
        data["agreed"] = finding.claim.real
    if finding.execution is not None:
        data["executed"] = {"status": finding.execution.status, "result": finding.execution.value,
                            "verdict": finding.execution.verdict}
    return data
