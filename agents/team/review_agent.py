"""The review agent: reviews code units, and verifies the patches generation proposes.

``subtask.verify``: the patched document must parse with no new ERROR/MISSING nodes, the change must stay inside the
target node, it must change something, and it must keep what the code defined (:mod:`..edits.invariants`);
otherwise the patch is rejected with a reason the next round reads. With
``run_examples`` (where code may run, ``team.runCode``) the patched function's own ``>>>`` examples must pass too
(:mod:`..edits.examples`, in the sandbox). When generation proposes several candidates, review chooses
among the accepted ones (:func:`choose_candidate`).

``subtask.search_repair``: when execution spoke against every candidate of a round, review tries the unit's one-token
variants against its examples in one sandbox run and proposes one that passes them all (:mod:`.repair_search`).

``subtask.review_units``: one question per unit (the unit, plus the file's imports and the signatures it uses), findings
anchored by the code they quote — a finding whose quote is not in the unit is dropped, never guessed at. Where the
request allows code to run, the unit's own ``>>>`` examples run first: a failing one is a finding of its own, confirmed
by execution (:mod:`.example_findings`); when no one-token repair says which line is wrong, review asks generation for
the unit repaired (``subtask.propose_fix``, along review -> generation) and places the finding on the line a repair that
passes every example changes. Then cross-examination: review asks diagnosis to challenge its findings
(``subtask.challenge``, along the graph's review -> diagnosis edge; at most ``MAX_CHALLENGED`` per unit, one fewer when
a repair was asked, so one changed function costs one to three requests), and where the request allows code to run, each
claimed call is executed against the unit in the sandbox (:func:`..edits.sandbox.call_functions`). The findings go back
with their claims and runs; the coordinator turns them into severities (:mod:`cross_examination`). Each unit is reviewed
once per content hash, model and prompt version: the findings, claims and runs are kept in the review cache, so an
unchanged unit costs no request, across saves and restarts (a claim cached before code was allowed to run is run,
without a request, once it is); so is the repair that located a failing example, or that none did.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, replace
from typing import Any

from ..broker.messages import Message, MessageKind
from ..broker.subscription import HandlerContext
from ..broker.task_scope import BrokerError, TaskEnded
from ..edits.anchoring import locate_snippet
from ..edits.examples import DEFAULT_TIMEOUT_S, file_path_of, run_examples
from ..edits.patches import ByteEdit, patched_text, verify_patch
from ..edits.sandbox import call_functions
from ..llm.client import LlmClient
from ..syntax.code_units import CodeUnit, innermost_unit
from ..syntax.snapshot import DocumentSnapshot
from . import prompts
from .cross_examination import execution_verdict, is_literal, runnable
from .example_findings import example_finding
from .payloads import (
    Challenge,
    ChallengeAnswer,
    Claim,
    Execution,
    Explanation,
    Finding,
    FixRequest,
    Proposal,
    ProposeFix,
    ReviewRequest,
    SearchRepair,
    UnitReview,
    Verification,
    VerifyPatch,
)
from .prompt_context import review_context
from .repair_search import search_repair
from .review_cache import ReviewCache
from .written_examples import run_written

log = logging.getLogger(__name__)
_SEVERITIES = {"error", "warning", "info"}
MAX_CHALLENGED = 2
"""Findings challenged per unit (one question each): with the review's own, one to three requests per unit."""


class ReviewAgent:
    name = "review"
    watches = (MessageKind.SUBTASK_VERIFY, MessageKind.SUBTASK_REVIEW_UNITS, MessageKind.SUBTASK_SEARCH_REPAIR)
    concurrency = 4

    def __init__(self, llm: LlmClient, cache: ReviewCache | None = None, run_examples: bool = False,
                 examples_timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.llm = llm
        self.cache = cache
        self.run_examples = run_examples
        self.examples_timeout_s = examples_timeout_s

    async def handle(self, message: Message, context: HandlerContext) -> None:
        if message.kind is MessageKind.SUBTASK_VERIFY:
            context.reply(await self.check(message.payload_as(VerifyPatch)))
        elif message.kind is MessageKind.SUBTASK_SEARCH_REPAIR:
            context.reply(await search_repair(message.payload_as(SearchRepair), self.check))
        else:
            context.reply(await self.review(message.payload_as(ReviewRequest), context.task_id, context))

    async def check(self, subtask: VerifyPatch) -> Verification:
        """:meth:`verify`, then — where code may run (``subtask.run_code``, else the agent's default) — the patched
        function's own examples (failing one rejects it) and diagnosis's written examples (each failure is kept
        with what it gave: it ranks the candidate lower and goes back to generation, see :func:`choose_candidate`)."""
        verification = self.verify(subtask)
        run_code = self.run_examples if subtask.run_code is None else subtask.run_code
        if not verification.accepted or not run_code:
            return verification
        snapshot = subtask.snapshot
        unit = innermost_unit(snapshot, subtask.allowed_start, subtask.allowed_end)
        if unit is None:
            return replace(verification, examples="inconclusive")
        patched = patched_text(snapshot.source, verification.edits)
        run = await run_examples(patched, unit.name, file_path_of(snapshot.uri), self.examples_timeout_s)
        if run.failed:
            return Verification(False, f"the fixed {unit.name} fails its own examples: {run.summary}",
                                examples=run.verdict)
        verification = replace(verification, reason=f"{verification.reason}; {run.summary}", examples=run.verdict)
        if not subtask.examples:
            return verification
        passed, failures, ran = await run_written(patched, unit.name, subtask.examples, file_path_of(snapshot.uri),
                                                  min(2.0, self.examples_timeout_s))
        said = f"{passed} of {ran} written example(s) pass" + (f" ({failures[0]})" if failures else "")
        return replace(verification, reason=f"{verification.reason}; {said}", written_passed=passed,
                       written_failures=failures)

    @staticmethod
    def verify(subtask: VerifyPatch) -> Verification:
        """Parses, changes something, and every line it really changes lies within the target's lines."""
        verdict = verify_patch(subtask.snapshot, subtask.proposal.patch, subtask.focus)
        if not verdict.accepted:
            return Verification(False, verdict.reason)
        lines = subtask.snapshot.lines
        first = lines.line_start(lines.line_of(subtask.allowed_start))
        last_line = lines.line_of(subtask.allowed_end)
        last = lines.line_start(last_line + 1) if last_line + 1 < lines.line_count else len(subtask.snapshot.source)
        outside = [edit for edit in verdict.edits if edit.start_byte < first or edit.end_byte > last]
        if outside:
            line = lines.line_of(outside[0].start_byte) + 1
            return Verification(False, f"it also changes line {line}, outside the code it was asked to change")
        return Verification(True, verdict.reason, verdict.edits)

    async def review(self, request: ReviewRequest, task_id: str,
                     asker: HandlerContext | None = None) -> tuple[UnitReview, ...]:
        """Review each unit; with ``asker`` (the handler's context) its findings are challenged by diagnosis."""
        reviews = await asyncio.gather(*(self._review_unit(request, unit, task_id, asker) for unit in request.units))
        return tuple(reviews)

    def cache_key(self, unit: CodeUnit) -> str:
        """The review cache key of ``unit``: its content, the model and the prompt version."""
        return ReviewCache.key(unit.content_hash, self.llm.endpoint.model, prompts.PROMPT_VERSION)

    async def _review_unit(self, request: ReviewRequest, unit: CodeUnit, task_id: str,
                           asker: HandlerContext | None) -> UnitReview:
        snapshot = request.snapshot
        key = self.cache_key(unit)
        repair = _RepairAsker(self, snapshot, unit, asker) if asker is not None else None
        own = await example_finding(snapshot, unit, self.examples_timeout_s, repair) if request.may_run_code else None
        raw = self.cache.get(key) if self.cache is not None else None
        cached = raw is not None
        complete = True
        if raw is None:
            context = review_context(snapshot, unit.start_byte, unit.end_byte)
            answer = await self.llm.complete_json(
                prompts.review(snapshot.language_name or "text", unit.text, context),
                prompts.REVIEW_SCHEMA, task_id=task_id, max_tokens=400)
            challenged = MAX_CHALLENGED - 1 if repair is not None and repair.asked else MAX_CHALLENGED
            raw = _proposed(snapshot, unit, _clean(answer.get("findings")))[:challenged]
            if raw:
                complete = await self._challenge(snapshot, unit, raw, asker)
        ran = await self._run_claims(request, unit, raw) if request.may_run_code else False
        if self.cache is not None and complete and (not cached or ran):
            self.cache.put(key, raw)
        findings = _anchor(snapshot, unit, raw)
        return UnitReview(unit, tuple(([own] if own is not None else []) + findings), cached)

    async def ask_repair(self, snapshot: DocumentSnapshot, unit: CodeUnit, evidence: str,
                         asker: HandlerContext) -> tuple[ByteEdit, ...] | None:
        """Generation's unguided repair of ``unit``, told the failing example (review -> generation,
        ``subtask.propose_fix``); its edits when review's check (the examples run on it) accepts it, () when the model
        answered something else, None when it could not be asked (no edge, the round bound reached, the model
        failing, too little time left)."""
        request = FixRequest(snapshot, unit.start_byte, unit.end_byte, f"{unit.name} fails its own example: {evidence}",
                             source="review", run_code=True)
        explanation = Explanation(evidence, unit.start_byte, unit.end_byte, reproduced=evidence)
        remaining = asker.remaining()
        try:
            reply = await asker.request(MessageKind.SUBTASK_PROPOSE_FIX, ProposeFix(request, explanation, 1),
                                        timeout=None if remaining is None else 0.8 * remaining)
        except TaskEnded:
            raise
        except BrokerError as error:
            log.info("failing example of %s not located by a repair: %s", unit.name, error)
            return None
        verification = await self.check(VerifyPatch(snapshot, reply.payload_as(Proposal), unit.start_byte,
                                                    unit.end_byte, run_code=True))
        return verification.edits if verification.accepted and verification.examples == "passed" else ()

    async def _challenge(self, snapshot: DocumentSnapshot, unit: CodeUnit, raw: list[dict[str, Any]],
                         asker: HandlerContext | None) -> bool:
        """Ask diagnosis about each proposed finding; False when it could not be asked (nothing is then cached)."""
        if asker is None:
            return False
        findings = tuple(_anchor(snapshot, unit, raw))
        try:
            reply = await asker.request(MessageKind.SUBTASK_CHALLENGE, Challenge(snapshot, unit, findings))
        except TaskEnded:
            raise
        except BrokerError as error:  # no edge, the round bound reached, diagnosis failed: unchallenged
            log.info("findings of %s not challenged: %s", unit.name, error)
            return False
        for record, claim in zip(raw, reply.payload_as(ChallengeAnswer).claims, strict=False):
            record["claim"] = asdict(claim) if claim is not None else None
        return True

    async def _run_claims(self, request: ReviewRequest, unit: CodeUnit, raw: list[dict[str, Any]]) -> bool:
        """Run, in the sandbox, each claimed call not run yet; whether any ran."""
        if request.snapshot.language_name != "python" or "function" not in unit.kind:
            return False
        todo = [(record, claim) for record in raw if record.get("execution") is None
                and (claim := _claim_of(record)) is not None and runnable(claim)]
        if not todo:
            return False
        calls = [(claim.args, claim.expected if is_literal(claim.expected) else None) for _, claim in todo]
        outcomes = await call_functions(request.snapshot.text, unit.name, calls, timeout_s=self.examples_timeout_s,
                                        module_path=file_path_of(request.snapshot.uri))
        for (record, claim), outcome in zip(todo, outcomes, strict=False):
            verdict = execution_verdict(claim, outcome.status, outcome.value, outcome.matches)
            record["execution"] = {"status": outcome.status, "value": outcome.value, "verdict": verdict}
        return True


class _RepairAsker:
    """Where a failing own example is, when no one-token repair says (:data:`.example_findings.Repair`): generation's
    repair of the unit, kept only when every example then passes. Asked once per unit content — the answer, or that
    there was none, is kept in the review cache — and ``asked`` says whether this review sent the request (then one
    finding fewer is challenged, so that a unit still costs at most three requests)."""

    def __init__(self, agent: ReviewAgent, snapshot: DocumentSnapshot, unit: CodeUnit, asker: HandlerContext) -> None:
        self.agent, self.snapshot, self.unit, self.asker = agent, snapshot, unit, asker
        self.asked = False

    async def __call__(self, evidence: str) -> Sequence[ByteEdit]:
        agent, unit = self.agent, self.unit
        key = f"{agent.cache_key(unit)}:repair"
        kept = agent.cache.get(key) if agent.cache is not None else None
        if kept is not None:
            return [ByteEdit(unit.start_byte + e["start"], unit.start_byte + e["end"], e["new"]) for e in kept]
        self.asked = True
        edits = await agent.ask_repair(self.snapshot, unit, evidence, self.asker)
        if edits is not None and agent.cache is not None:
            agent.cache.put(key, [{"start": e.start_byte - unit.start_byte, "end": e.end_byte - unit.start_byte,
                                   "new": e.new_text} for e in edits])
        return edits or ()


def choose_candidate(verifications: Sequence[Verification]) -> int | None:
    """Review's choice among one round's candidate fixes (their verifications, in the order proposed).

    Only accepted ones count. First by evidence: the function's own examples passed, then the most of diagnosis's
    written examples passed (:attr:`Verification.evidence`); then the change most candidates agree on (small models
    that sample the same fix several times are more often right), then the smallest change, then the earliest (the
    unguided repair, the coolest sample). None when none was accepted.
    """
    accepted = [(index, v) for index, v in enumerate(verifications) if v.accepted]
    if not accepted:
        return None
    votes = Counter(_change_key(v) for _, v in accepted)
    return min(accepted, key=lambda item: (tuple(-e for e in item[1].evidence), -votes[_change_key(item[1])],
                                           _change_size(item[1]), item[0]))[0]


def settled(verification: Verification) -> bool:
    """Whether no further candidate is needed: accepted, and what was run of it all passed (something ran)."""
    return verification.accepted and not verification.written_failures and (
        verification.examples == "passed" or verification.written_passed > 0)


def _change_key(verification: Verification) -> tuple:
    return tuple((e.start_byte, e.end_byte, " ".join(e.new_text.split())) for e in verification.edits)


def _change_size(verification: Verification) -> int:
    return sum(e.end_byte - e.start_byte + len(e.new_text) for e in verification.edits)


def _proposed(snapshot: DocumentSnapshot, unit: CodeUnit, raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The findings worth a challenge: anchored in the unit, one per quoted line, at most ``MAX_CHALLENGED``."""
    kept: list[dict[str, Any]] = []
    spans: set[tuple[int, int]] = set()
    for item in raw:
        found = locate_snippet(snapshot, item["quote"], (unit.start_byte, unit.end_byte))
        if found is None or found in spans or not (unit.start_byte <= found[0] and found[1] <= unit.end_byte):
            continue
        spans.add(found)
        kept.append({**item, "claim": None, "execution": None})
    return kept[:MAX_CHALLENGED]


def _claim_of(record: dict[str, Any]) -> Claim | None:
    claim = record.get("claim")
    return Claim(**claim) if isinstance(claim, dict) else None


def _execution_of(record: dict[str, Any]) -> Execution | None:
    run = record.get("execution")
    return Execution(**run) if isinstance(run, dict) else None


def _clean(findings: object) -> list[dict[str, str]]:
    """The model's findings as plain records (quote, problem, severity), whatever shape the JSON had."""
    cleaned = []
    for item in findings if isinstance(findings, list) else []:
        if not isinstance(item, dict):
            continue
        quote = str(item.get("quote") or "").strip()
        problem = str(item.get("problem") or "").strip()
        severity = str(item.get("severity") or "warning").lower()
        if quote and problem:
            cleaned.append({"quote": quote, "problem": problem,
                            "severity": severity if severity in _SEVERITIES else "warning"})
    return cleaned


def _anchor(snapshot: DocumentSnapshot, unit: CodeUnit, raw: list[dict[str, Any]]) -> list[Finding]:
    findings = []
    for item in raw:
        found = locate_snippet(snapshot, item["quote"], (unit.start_byte, unit.end_byte))
        if found is None or not (unit.start_byte <= found[0] and found[1] <= unit.end_byte):
            log.info("review finding dropped: its quote %r is not in %s", item["quote"][:60], unit.name)
            continue
        findings.append(Finding(found[0], found[1], item["problem"], item["severity"], "review", item["quote"],
                                unit.name, _claim_of(item), _execution_of(item)))
    return findings
