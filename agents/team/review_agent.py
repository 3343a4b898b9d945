"""The review agent: reviews code units, and verifies the patches generation proposes.

``subtask.verify``: the patched document must parse with no new ERROR/MISSING nodes, the change must stay inside the
target node, it must change something, and it must keep what the code defined (:mod:`..edits.invariants`);
otherwise the patch is rejected with a reason the next round reads. With
``run_examples`` (the opt-in ``team.runDoctests``) the patched function's own ``>>>`` examples must pass too
(:mod:`doctest_check`, in a subprocess with a timeout). When generation proposes several candidates, review chooses
among the accepted ones (:func:`choose_candidate`).

``subtask.review_units``: one question per unit (the unit, plus the file's imports and the signatures it uses),
findings anchored by the code they quote — a finding whose quote is not in the unit is dropped, never guessed at.
Each unit is reviewed once per content hash, model and prompt version: the answer is kept in the review cache, so
an unchanged unit costs no request, across saves and restarts.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from urllib.parse import urlparse
from urllib.request import url2pathname

from ..broker.messages import Message, MessageKind
from ..broker.subscription import HandlerContext
from ..edits.anchoring import locate_snippet
from ..edits.examples import DEFAULT_TIMEOUT_S, run_examples
from ..edits.patches import ByteEdit, verify_patch
from ..llm.client import LlmClient
from ..syntax.code_units import CodeUnit, innermost_unit
from ..syntax.snapshot import DocumentSnapshot
from . import prompts
from .payloads import Finding, ReviewRequest, UnitReview, Verification, VerifyPatch
from .prompt_context import review_context
from .review_cache import ReviewCache
from .written_examples import run_written

log = logging.getLogger(__name__)
_SEVERITIES = {"error", "warning", "info"}


class ReviewAgent:
    name = "review"
    watches = (MessageKind.SUBTASK_VERIFY, MessageKind.SUBTASK_REVIEW_UNITS)
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
        else:
            context.reply(await self.review(message.payload_as(ReviewRequest), context.task_id))

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
        patched = _patched_text(snapshot.source, verification.edits)
        run = await run_examples(patched, unit.name, _local_path(snapshot.uri), self.examples_timeout_s)
        if run.failed:
            return Verification(False, f"the fixed {unit.name} fails its own examples: {run.summary}",
                                examples=run.verdict)
        verification = replace(verification, reason=f"{verification.reason}; {run.summary}", examples=run.verdict)
        if not subtask.examples:
            return verification
        passed, failures, ran = await run_written(patched, unit.name, subtask.examples, _local_path(snapshot.uri),
                                                  min(5.0, self.examples_timeout_s))
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

    async def review(self, request: ReviewRequest, task_id: str) -> tuple[UnitReview, ...]:
        reviews = await asyncio.gather(*(self._review_unit(request.snapshot, unit, task_id) for unit in request.units))
        return tuple(reviews)

    def _cache_key(self, unit: CodeUnit) -> str:
        return ReviewCache.key(unit.content_hash, self.llm.endpoint.model, prompts.PROMPT_VERSION)

    async def _review_unit(self, snapshot: DocumentSnapshot, unit: CodeUnit, task_id: str) -> UnitReview:
        key = self._cache_key(unit)
        raw = self.cache.get(key) if self.cache is not None else None
        cached = raw is not None
        if raw is None:
            context = review_context(snapshot, unit.start_byte, unit.end_byte)
            answer = await self.llm.complete_json(
                prompts.review(snapshot.language_name or "text", unit.text, context),
                prompts.REVIEW_SCHEMA, task_id=task_id, max_tokens=400)
            raw = _clean(answer.get("findings"))
            if self.cache is not None:
                self.cache.put(key, raw)
        return UnitReview(unit, tuple(_anchor(snapshot, unit, raw)), cached)


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


def _patched_text(source: bytes, edits: Sequence[ByteEdit]) -> str:
    for edit in sorted(edits, key=lambda e: e.start_byte, reverse=True):
        source = source[:edit.start_byte] + edit.new_text.encode("utf-8", "surrogatepass") + source[edit.end_byte:]
    return source.decode("utf-8", "surrogatepass")


def _local_path(uri: str) -> str | None:
    """The file behind a ``file:`` URI (its folder goes on ``sys.path`` for sibling imports), None otherwise."""
    parsed = urlparse(uri)
    return url2pathname(parsed.path) if parsed.scheme == "file" else None


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


def _anchor(snapshot: DocumentSnapshot, unit: CodeUnit, raw: list[dict[str, str]]) -> list[Finding]:
    findings = []
    for item in raw:
        found = locate_snippet(snapshot, item["quote"], (unit.start_byte, unit.end_byte))
        if found is None or not (unit.start_byte <= found[0] and found[1] <= unit.end_byte):
            log.info("review finding dropped: its quote %r is not in %s", item["quote"][:60], unit.name)
            continue
        findings.append(Finding(found[0], found[1], item["problem"], item["severity"], "review", item["quote"],
                                unit.name))
    return findings
