"""What the team is asked and what it answers: the payloads of the broker's messages and the team's results.

Everything is frozen: a payload is shared by every agent that receives it and by the trace. A document travels as
its immutable ``DocumentSnapshot`` (shared, never copied or reparsed); positions are byte offsets of that snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..edits.patches import ByteEdit, Patch
from ..llm.usage import TokenUsage
from ..syntax.code_units import CodeUnit
from ..syntax.snapshot import DocumentSnapshot


@dataclass(frozen=True)
class FixRequest:
    """Explain and fix one diagnostic (ours or any other tool's) of one snapshot."""

    snapshot: DocumentSnapshot
    start_byte: int
    end_byte: int
    message: str
    source: str | None = None
    code: str | None = None
    known_cause: str | None = None
    """An explanation that came with the diagnostic (e.g. our review's), so diagnosis need not ask again."""
    run_code: bool | None = None
    """Whether the user allows running code for this request (the server's ``may_run_code``): then examples are
    written and every candidate runs them in the sandbox. None: the team's default (``Team(run_doctests=...)``)."""

    def summary(self) -> str:
        return f"fix {self.source or 'diagnostic'}: {self.message[:50]} @{self.start_byte} v{self.snapshot.version}"


@dataclass(frozen=True)
class WrittenExample:
    """An executable check diagnosis wrote from the docstring and the diagnostic, as data: the text between the
    call's parentheses (Python literals only) and the expected result as a Python literal."""

    args: str
    expected: str

    def call(self, function_name: str) -> str:
        return f"{function_name}({self.args})"


@dataclass(frozen=True)
class Explanation:
    """Diagnosis's answer: the cause in words and the node an edit may replace (a guess: never a constraint), and
    — when code may run — the unit's own example it saw fail (``reproduced``) or, when none failed, the examples it
    wrote."""

    cause: str
    target_start: int
    target_end: int
    suspect: str = ""
    examples: tuple[WrittenExample, ...] = ()
    reproduced: str = ""
    """The unit's own example that fails as the code stands ("`f(2)` gives 3, its docstring says 4"), empty when
    none was run or none failed: the bug is shown by the user's own oracle, so no examples are written."""

    @property
    def for_user(self) -> str:
        """The cause as the user reads it, with the failing example that shows it when one ran."""
        return f"{self.cause} (Seen: {self.reproduced}.)" if self.reproduced else self.cause

    def summary(self) -> str:
        return f"{self.cause[:60]} -> bytes {self.target_start}-{self.target_end}"


@dataclass(frozen=True)
class ProposeFix:
    """Generation's subtask: replace the target, knowing the cause and why earlier attempts were rejected."""

    request: FixRequest
    explanation: Explanation
    round: int
    rejections: tuple[str, ...] = ()
    candidate: int = 1
    """Which of the round's candidates (``team.fixCandidates``) this is: each samples differently."""

    def summary(self) -> str:
        which = f" candidate {self.candidate}" if self.candidate > 1 else ""
        return f"round {self.round}{which}" + (f" after: {self.rejections[-1][:50]}" if self.rejections else "")


@dataclass(frozen=True)
class GenerateRequest:
    """Write code at a place: a stub body, a comment or TODO, or the cursor between a prefix and a suffix."""

    snapshot: DocumentSnapshot
    start_byte: int
    end_byte: int
    instruction: str
    kind: str
    """"stub" (replace a function with its implementation), "comment" (insert code after it), "cursor"."""

    def summary(self) -> str:
        return f"generate {self.kind} @{self.start_byte} v{self.snapshot.version}"


@dataclass(frozen=True)
class Proposal:
    """Code proposed by generation for ``patch``'s range (already fitted to the document's indentation)."""

    patch: Patch
    note: str = ""

    def summary(self) -> str:
        return f"{len(self.patch.new_text)} chars for bytes {self.patch.start_byte}-{self.patch.end_byte}"


@dataclass(frozen=True)
class Verification:
    """Review's verdict on a proposal: accepted with its edits, or rejected with a reason the next round reads."""

    accepted: bool
    reason: str
    edits: tuple[ByteEdit, ...] = ()
    examples: str = ""
    """The verdict of the function's own examples when they were run (``team.runCode``): "passed", "failed" or
    "inconclusive"; empty when they were not run."""
    written_passed: int = 0
    written_failures: tuple[str, ...] = ()
    """Diagnosis's written examples this candidate passed, and what it gave on those it failed (worded for the
    next round of generation: "f(2) returns 3, expected 4")."""

    @property
    def evidence(self) -> tuple[int, int]:
        """How strongly execution supports it, higher is better: (own examples passed, written examples passed)."""
        return ({"passed": 2, "inconclusive": 1, "": 1}.get(self.examples, 0), self.written_passed)

    def summary(self) -> str:
        return ("accepted: " if self.accepted else "rejected: ") + self.reason[:60]


@dataclass(frozen=True)
class ReviewPolicy:
    """How evidence becomes a severity (``team.review.*``): a finding's confidence — the votes of the agents that
    handled it, combined by the weights of the edges they travelled — must reach a severity's threshold, and a
    Warning or Error also needs an input that really ran red. ``unconfirmed``: "drop" or "hint"."""

    error_confidence: float = 0.8
    warning_confidence: float = 0.8
    information_confidence: float = 0.8
    unconfirmed: str = "drop"


@dataclass(frozen=True)
class ReviewRequest:
    """Review these units of a snapshot (the ones that changed). ``may_run_code``: the claimed inputs of findings
    may be run against the unit in the sandbox (only where the user allowed code to run)."""

    snapshot: DocumentSnapshot
    units: tuple[CodeUnit, ...]
    may_run_code: bool = False
    policy: ReviewPolicy = field(default_factory=ReviewPolicy)

    def summary(self) -> str:
        runs = ", may run code" if self.may_run_code else ""
        return f"review {len(self.units)} unit(s) of v{self.snapshot.version}{runs}"


@dataclass(frozen=True)
class Claim:
    """Diagnosis's answer to a challenge of one finding: is it a real defect, and which call shows it.

    ``args`` is the text between the call's parentheses, every argument a Python literal; ``expected`` what the
    docstring or intent says the call gives, ``actual`` what diagnosis says this code gives instead (a literal, or
    the exception it raises). Data, never code: only the sandbox evaluates it, as literals."""

    real: bool
    args: str = ""
    expected: str = ""
    actual: str = ""
    reason: str = ""

    def call(self, function: str) -> str:
        return f"{function}({self.args})"


@dataclass(frozen=True)
class Execution:
    """A claimed call run against the unit in the sandbox: ``status`` and ``value`` as the sandbox answered, and
    ``verdict``: "confirmed" (a wrong result, as claimed), "crash" (it raised), "refuted" (it gave the expected
    result) or "inconclusive" (it could not run, or ran to neither the claimed nor the expected result)."""

    status: str
    value: str
    verdict: str


@dataclass(frozen=True)
class Finding:
    """A review finding anchored to the text it quotes (model line numbers are never trusted).

    Proposed by review, then challenged: ``claim`` is diagnosis's answer (None when it was not asked or could not
    answer), ``execution`` what running the claimed input did (None when it was not run). The coordinator turns
    these into ``confidence`` and ``severity``; ``evidence`` says it in words."""

    start_byte: int
    end_byte: int
    message: str
    severity: str = "warning"
    code: str = "review"
    quote: str = ""
    unit_name: str = ""
    claim: Claim | None = None
    execution: Execution | None = None
    confidence: float = 0.0
    evidence: str = ""

    def summary(self) -> str:
        return f"{self.severity}: {self.message[:60]}"


@dataclass(frozen=True)
class Challenge:
    """Review's question to diagnosis: are these findings of ``unit`` real defects, and which input shows each?"""

    snapshot: DocumentSnapshot
    unit: CodeUnit
    findings: tuple[Finding, ...]

    def summary(self) -> str:
        return f"challenge {len(self.findings)} finding(s) of {self.unit.name}"


@dataclass(frozen=True)
class ChallengeAnswer:
    """Diagnosis's answers to a ``Challenge``, one ``Claim`` per finding in the same order (None: no answer)."""

    claims: tuple[Claim | None, ...]

    def summary(self) -> str:
        real = sum(1 for claim in self.claims if claim is not None and claim.real)
        return f"{real} of {len(self.claims)} finding(s) real"


@dataclass(frozen=True)
class UnitReview:
    """Review's findings for one unit, and whether they came from the cache (no request sent)."""

    unit: CodeUnit
    findings: tuple[Finding, ...]
    cached: bool

    def summary(self) -> str:
        return f"{self.unit.name}: {len(self.findings)} finding(s){' (cached)' if self.cached else ''}"


@dataclass(frozen=True)
class TeamResult:
    """What the team answers to one request: edits (for fix/generate) or findings (for review), or why not.

    ``ok`` False means "no safe result": ``reason`` says why in words a user can act on, and nothing is to be
    applied. Edits are byte edits of the snapshot version ``version`` — never to be applied to any other.
    """

    ok: bool
    uri: str
    version: int
    reason: str = ""
    explanation: str = ""
    edits: tuple[ByteEdit, ...] = ()
    findings: tuple[Finding, ...] = ()
    rounds: int = 0
    usage: TokenUsage = field(default_factory=TokenUsage)
    task_id: str = ""
    requests_sent: int = 0


@dataclass(frozen=True)
class VerifyPatch:
    """Review's subtask: check ``proposal`` against the snapshot it was made for; it must stay inside the target."""

    snapshot: DocumentSnapshot
    proposal: Proposal
    allowed_start: int
    allowed_end: int
    focus: tuple[int, int] | None = None
    """The range of the diagnostic being fixed: a definition whose header it touches may change its parameters."""
    run_code: bool | None = None
    """Whether the candidate may be run (None: the review agent's own default)."""
    examples: tuple[WrittenExample, ...] = ()
    """Diagnosis's written examples, run on the candidate when ``run_code``."""

    def summary(self) -> str:
        return f"verify {self.proposal.summary()}"


@dataclass(frozen=True)
class SearchRepair:
    """Review's subtask when execution spoke against every candidate: try the one-token variants of the unit at
    ``[allowed_start, allowed_end)`` against its examples, nearest first to diagnosis's suspect range."""

    snapshot: DocumentSnapshot
    allowed_start: int
    allowed_end: int
    suspect_start: int
    suspect_end: int
    examples: tuple[WrittenExample, ...] = ()
    candidate_texts: tuple[str, ...] = ()
    """What generation proposed so far: a variant whose changed line one of them also wrote is preferred."""

    def summary(self) -> str:
        return f"search one-token repairs of bytes {self.allowed_start}-{self.allowed_end}"


@dataclass(frozen=True)
class SearchedRepair:
    """The search's answer: the repair as a proposal with review's verification of it, or only a rejection."""

    verification: Verification
    proposal: Proposal | None = None
    hint: str = ""
    """When the examples do not pin a repair down: the line changes that pass them, for generation's next round."""

    def summary(self) -> str:
        return self.verification.summary()

