"""The coordinator: the seed's four steps, one method per kind of request.

1. **Allocation** — a request opens a task on the broker with one deadline; the cooperation graph routes each
   subtask to the agents that take it (the broker delivers along the graph's edges, nowhere else).
2. **Decomposition** — explain-and-fix becomes explain -> propose -> verify; generation becomes generate -> verify;
   review becomes review-units (one per unit).
3. **Collaborative processing** — review verifies each proposal; a rejection goes back to generation with its
   reason, for at most the graph's round bound of the generation <-> review loop. Review asks diagnosis to
   challenge its findings (review -> diagnosis) and runs the claimed inputs where code may run.
4. **Integration** — outputs are merged by the weights of the edges they travelled (``merge_by_weight``): a
   reviewer's rejection outweighs a proposal; overlapping findings merge into one, and each finding's severity
   follows its evidence and its confidence, the merge of review's and diagnosis's votes
   (:func:`cross_examination.judge`); the trace notes each decision.

Every request ends in one ``TeamResult``: a verified edit, findings, or ``ok=False`` with a reason a user can act
on. An edit that failed verification is never returned. Cancelling the caller's asyncio task cancels every agent
working on the request, in-flight LLM calls included.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace

from ..broker.broker import Broker
from ..broker.messages import Failure, Message
from ..broker.messages import MessageKind as K
from ..broker.task_scope import AgentFailed, RoundLimitExceeded, TaskEnded, TaskScope
from ..edits.patches import ByteEdit
from ..llm.client import LlmClient
from ..syntax.code_units import unit_node_at
from ..syntax.snapshot import DocumentSnapshot
from .cooperation import CooperationGraph, Output, Verdict
from .cross_examination import judge, shows_defect
from .diagnosis_agent import DiagnosisAgent
from .generation_agent import GenerationAgent
from .payloads import (
    Explanation,
    Finding,
    FixRequest,
    GenerateRequest,
    Proposal,
    ProposeFix,
    ReviewRequest,
    SearchedRepair,
    SearchRepair,
    TeamResult,
    UnitReview,
    Verification,
    VerifyPatch,
    WrittenExample,
)
from .review_agent import ReviewAgent, choose_candidate, settled
from .review_cache import ReviewCache

log = logging.getLogger(__name__)
StepReporter = Callable[[str], None]


def _quiet(_step: str) -> None:
    return None


class Team:
    """The agent team behind one broker. ``async with Team(llm) as team: await team.explain_and_fix(request)``."""

    def __init__(self, llm: LlmClient, graph: CooperationGraph | None = None, review_cache: ReviewCache | None = None,
                 deadline_s: float = 120.0, fix_candidates: int = 1, run_doctests: bool = False) -> None:
        self.llm = llm
        self.graph = graph or CooperationGraph.default()
        self.deadline_s = deadline_s
        self.fix_candidates = max(1, fix_candidates)
        self.run_doctests = run_doctests
        self.broker = Broker(router=self.graph)
        review = ReviewAgent(llm, review_cache, run_examples=run_doctests)
        for agent in (DiagnosisAgent(llm), GenerationAgent(llm), review):
            self.broker.subscribe(agent)
        self.last_task_id: str | None = None

    async def __aenter__(self) -> Team:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.broker.close()

    def last_trace(self) -> str:
        if self.last_task_id is None:
            return "no task has run yet"
        return str(self.broker.trace(self.last_task_id))

    def _open(self, deadline_s: float | None) -> TaskScope:
        task = self.broker.open_task(timeout=deadline_s or self.deadline_s)
        self.last_task_id = task.id
        return task

    def _result(self, task: TaskScope, snapshot_uri: str, version: int, *, ok: bool, reason: str = "",
                explanation: str = "", edits: tuple[ByteEdit, ...] = (), findings: tuple[Finding, ...] = (),
                rounds: int = 0) -> TeamResult:
        usage = self.llm.usage_for(task.id)
        return TeamResult(ok=ok, uri=snapshot_uri, version=version, reason=reason, explanation=explanation,
                          edits=edits, findings=findings, rounds=rounds, usage=usage, task_id=task.id,
                          requests_sent=usage.requests)

    # -- explain and fix -----------------------------------------------------------------------------------------

    async def explain_and_fix(self, request: FixRequest, report: StepReporter = _quiet,
                              deadline_s: float | None = None) -> TeamResult:
        snapshot = request.snapshot
        if request.run_code is None:
            request = replace(request, run_code=self.run_doctests)
        async with self._open(deadline_s) as task:
            rounds = 0
            explanation: Explanation | None = None
            try:
                report("diagnosis: explaining the cause")
                explanation = explained = (await task.request(K.SUBTASK_EXPLAIN, request)).payload_as(Explanation)
                # A guessed cause is never a constraint: any candidate may change the whole unit around the target.
                unit = unit_node_at(snapshot, explained.target_start, explained.target_end)
                allowed = (unit.start_byte, unit.end_byte) if unit is not None else (
                    explained.target_start, explained.target_end)
                proposal, verification, rounds = await self._propose_until_accepted(
                    task, K.SUBTASK_PROPOSE_FIX, lambda n, why, k: ProposeFix(request, explained, n, why, k),
                    *allowed, snapshot, report, candidates=self.fix_candidates,
                    focus=(request.start_byte, request.end_byte), run_code=request.run_code,
                    examples=explained.examples, suspect=(explained.target_start, explained.target_end),
                    shown=bool(explained.reproduced))
            except (AgentFailed, TaskEnded, RoundLimitExceeded) as error:
                return self._result(task, snapshot.uri, snapshot.version, ok=False, reason=_why(error),
                                    explanation=explanation.for_user if explanation else "", rounds=rounds)
            if verification is None:
                return self._result(task, snapshot.uri, snapshot.version, ok=False, rounds=rounds,
                                    explanation=explanation.for_user,
                                    reason=f"no safe fix after {rounds} round(s): {proposal}")
            return self._result(task, snapshot.uri, snapshot.version, ok=True, explanation=explanation.for_user,
                                edits=verification.edits, rounds=rounds, reason=verification.reason)

    async def _propose_until_accepted(self, task: TaskScope, kind: K,
                                      subtask: Callable[[int, tuple[str, ...], int], object],
                                      allowed_start: int, allowed_end: int, snapshot: DocumentSnapshot,
                                      report: StepReporter, max_rounds: int | None = None, candidates: int = 1,
                                      focus: tuple[int, int] | None = None, run_code: bool | None = None,
                                      examples: tuple[WrittenExample, ...] = (),
                                      suspect: tuple[int, int] | None = None, shown: bool = False,
                                      ) -> tuple[object, Verification | None, int]:
        """Rounds of propose -> verify until review accepts; returns (proposal or last reason, verdict, rounds).

        With several candidates per round, generation proposes them one after another (each sampled differently) and
        review verifies each (running the examples where ``run_code``); the first that passes all it ran ends the round
        at once, otherwise review chooses among every accepted one so far (``choose_candidate``: evidence, then
        agreement, then size). When no candidate of the first round settled it and the unit's own examples speak
        against it (they fail as it stands — ``shown``: diagnosis reproduced the bug — or a candidate failed them;
        fixes, where code may run, given diagnosis's ``suspect`` range), review searches the unit's one-token repairs
        against its examples once (``subtask.search_repair``, seconds and no model call) and its find joins the
        candidates. A round with none accepted, or whose candidates all failed a written example, sends its reasons
        (what they gave) to the next — unless every candidate of the round repeated code already tried (an earlier
        candidate's, or the unchanged code twice): the model is stuck, and another round would cost a call for the
        same answer. Once a fix is in hand, no further candidate is asked when the deadline leaves too little time
        for one. The trace notes which candidate was chosen and why.
        """
        rejections: tuple[str, ...] = ()
        bound = self.graph.max_rounds("generation", "review") or 1
        max_rounds = min(max_rounds, bound) if max_rounds else bound
        pool: list[tuple[Proposal, Verification]] = []  # every accepted candidate of every round
        proposed: list[str] = []  # what generation wrote, accepted or not: agreement for the repair search
        own_failed = shown  # the unit's own examples fail as it stands, or a candidate failed them: they can judge a
        # one-token repair
        tried: set[str] = set()  # the code of every earlier round's candidates (whitespace collapsed)
        searched = suspect is None or not run_code
        slowest = 0.0
        for round_number in range(1, max_rounds + 1):
            reasons: list[str] = []
            failures: list[AgentFailed] = []
            written: list[str] = []  # this round's candidates' code
            for candidate in range(1, candidates + 1):
                remaining = task.remaining()
                if pool and remaining is not None and remaining < 1.5 * slowest:
                    break  # another candidate would risk the deadline and lose the fix already in hand
                began = asyncio.get_running_loop().time()
                which = f", candidate {candidate} of {candidates}" if candidates > 1 else ""
                report(f"generation: proposing (round {round_number} of {max_rounds}{which})")
                try:
                    proposal = (await task.request(
                        kind, subtask(round_number, rejections, candidate))).payload_as(Proposal)
                except AgentFailed as error:
                    failures.append(error)
                    reasons.append(_why(error))
                    continue
                proposed.append(proposal.patch.new_text)
                written.append(_code_key(proposal.patch.new_text))
                report(f"review: verifying round {round_number}{which}")
                verification = (await task.request(
                    K.SUBTASK_VERIFY, VerifyPatch(snapshot, proposal, allowed_start, allowed_end, focus, run_code,
                                                  examples))
                ).payload_as(Verification)
                slowest = max(slowest, asyncio.get_running_loop().time() - began)
                own_failed = own_failed or verification.examples == "failed"
                votes: list[Output[Proposal | Verification]] = [
                    Output("generation", "patch", proposal, Verdict.PROPOSE, to="review"),
                    Output("review", "patch", verification,
                           Verdict.PROPOSE if verification.accepted else Verdict.REJECT, to="generation"),
                ]
                (decision,) = self.graph.merge_by_weight(votes)
                if decision.verdict is Verdict.PROPOSE and verification.accepted:
                    pool.append((proposal, verification))
                    reasons += [f"it gave: {failure}" for failure in verification.written_failures]
                    if candidates == 1 or settled(verification):
                        break
                else:
                    reasons.append(verification.reason)
            if len(failures) == candidates and not pool:  # not one proposal yet: the model itself is failing
                raise failures[0]
            if not searched and own_failed and not any(settled(verification) for _, verification in pool):
                searched = True
                assert suspect is not None
                report("review: trying one-token repairs against the examples")
                found = (await task.request(K.SUBTASK_SEARCH_REPAIR, SearchRepair(
                    snapshot, allowed_start, allowed_end, *suspect, examples, tuple(proposed)))
                ).payload_as(SearchedRepair)
                if found.proposal is not None and found.verification.accepted:
                    pool.append((found.proposal, found.verification))
                elif found.hint:
                    reasons.append(found.hint)
            chosen = choose_candidate([verification for _, verification in pool])
            # Another round only when execution spoke against every candidate so far (a written example failed):
            # it hears what they gave. Otherwise the best by evidence, agreement and size is the answer.
            remaining = task.remaining()
            out_of_time = remaining is not None and remaining < 1.5 * slowest
            stuck = bool(written) and all(code in tried for code in written)
            tried.update(written)
            if chosen is not None and (settled(pool[chosen][1]) or not pool[chosen][1].written_failures
                                       or round_number == max_rounds or out_of_time or stuck):
                proposal, verification = pool[chosen]
                task.trace.add(asyncio.get_running_loop().time(), None,
                               note=f"chose {proposal.note or 'the proposal'}: {verification.reason}")
                return proposal, verification, round_number
            rejections += tuple(dict.fromkeys(reasons))
            if stuck:
                task.trace.add(asyncio.get_running_loop().time(), None,
                               note=f"round {round_number} repeated code already tried: no further round")
                return (f"{rejections[-1]} (round {round_number} repeated code already tried)"
                        if rejections else "nothing proposed"), None, round_number
        return (rejections[-1] if rejections else "nothing proposed"), None, max_rounds

    # -- generate ------------------------------------------------------------------------------------------------

    async def generate(self, request: GenerateRequest, report: StepReporter = _quiet,
                       deadline_s: float | None = None, max_rounds: int | None = None) -> TeamResult:
        snapshot = request.snapshot
        async with self._open(deadline_s) as task:
            try:
                proposal, verification, rounds = await self._propose_until_accepted(
                    task, K.SUBTASK_GENERATE, lambda _n, _why, _k: request, request.start_byte, request.end_byte,
                    snapshot, report, max_rounds)
            except (AgentFailed, TaskEnded, RoundLimitExceeded) as error:
                return self._result(task, snapshot.uri, snapshot.version, ok=False, reason=_why(error))
            if verification is None:
                return self._result(task, snapshot.uri, snapshot.version, ok=False, rounds=rounds,
                                    reason=f"no code that parses after {rounds} round(s): {proposal}")
            return self._result(task, snapshot.uri, snapshot.version, ok=True, edits=verification.edits,
                                rounds=rounds, explanation=f"generated from the {request.kind}")

    # -- review --------------------------------------------------------------------------------------------------

    async def review(self, request: ReviewRequest, report: StepReporter = _quiet,
                     deadline_s: float | None = None) -> TeamResult:
        """Each unit is its own subtask, so a deadline ends the review with the units already reviewed."""
        snapshot = request.snapshot
        async with self._open(deadline_s) as task:
            if not request.units:
                return self._result(task, snapshot.uri, snapshot.version, ok=True, reason="nothing changed")
            report(f"review: {len(request.units)} unit(s)")
            outcomes = await asyncio.gather(*(
                task.request(K.SUBTASK_REVIEW_UNITS, replace(request, units=(unit,))) for unit in request.units),
                return_exceptions=True)
            replies: list[Message] = []
            failures: list[AgentFailed | TaskEnded] = []
            for outcome in outcomes:
                if isinstance(outcome, (AgentFailed, TaskEnded)):
                    failures.append(outcome)
                elif isinstance(outcome, BaseException):
                    raise outcome
                else:
                    replies.append(outcome)
            complete = not failures
            reason = _why(failures[0]) if failures else ""
            reviews = [review for reply in replies for review in reply.payload_items(UnitReview)]
            merged = self.graph.merge_by_weight(
                Output("review", (finding.start_byte, finding.end_byte), finding)
                for unit_review in reviews for finding in unit_review.findings)
            findings = self._judged(task, [decision.value for decision in merged], request)
            cached = sum(1 for unit_review in reviews if unit_review.cached)
            proposed = sum(len(unit_review.findings) for unit_review in reviews)
            summary = (f"{len(reviews)} of {len(request.units)} unit(s) reviewed, {cached} from the cache; "
                       f"{len(findings)} of {proposed} finding(s) survived cross-examination")
            return self._result(task, snapshot.uri, snapshot.version, ok=complete, findings=findings,
                                reason=f"{summary}: {reason}" if reason else summary)

    def _judged(self, task: TaskScope, proposed: list[Finding], request: ReviewRequest) -> tuple[Finding, ...]:
        """Integration: each finding's severity from its votes (weighted by the graph) and its evidence; the
        decision and its reasons go into the task's trace."""
        kept = []
        for finding in proposed:
            judged = judge(self.graph, finding, request.policy)
            outcome = f"{judged.severity} at confidence {judged.confidence:.2f}" if judged else "dropped"
            why = judged.evidence if judged else _dropped_because(finding)
            task.trace.add(asyncio.get_running_loop().time(), None,
                           note=f"finding in {finding.unit_name} ({finding.quote[:40]!r}): {outcome}: {why}")
            if judged is not None:
                kept.append(judged)
        return tuple(kept)


def _code_key(code: str) -> str:
    """Code compared as the model wrote it, whitespace aside: two candidates with the same key are the same answer."""
    return " ".join(code.split())


def _dropped_because(finding: Finding) -> str:
    if finding.execution is not None and finding.execution.verdict == "refuted":
        return f"running the claimed call refuted it ({finding.execution.value})"
    if finding.execution is not None and finding.execution.verdict == "invalid":
        return f"the claimed call does not fit the function ({finding.execution.value})"
    if finding.claim is None:
        return "diagnosis did not answer the challenge"
    if finding.claim.real and not shows_defect(finding.claim):
        return f"diagnosis's own call gives what is expected ({finding.claim.expected}): it shows no defect"
    return "diagnosis rejects it" if not finding.claim.real else "its confidence is below every threshold"


def _why(error: Exception) -> str:
    if isinstance(error, AgentFailed):
        return "; ".join(failure.payload_as(Failure).error.split(": ", 1)[-1] for failure in error.failures)
    if isinstance(error, TaskEnded):
        if error.reason == "deadline":
            return "the team ran out of time (llm.taskDeadlineS) before it had a checked result"
        return f"the request was {error.reason}"
    return str(error)
