"""The review agent: reviews code units, and verifies the patches generation proposes.

``subtask.verify``: the patched document must parse with no new ERROR/MISSING nodes, the change must stay inside the
target node, and it must change something; otherwise the patch is rejected with a reason the next round reads.

``subtask.review_units``: one question per unit (the unit, plus the file's imports and the signatures it uses),
findings anchored by the code they quote — a finding whose quote is not in the unit is dropped, never guessed at.
Each unit is reviewed once per content hash, model and prompt version: the answer is kept in the review cache, so
an unchanged unit costs no request, across saves and restarts.
"""

from __future__ import annotations

import asyncio
import logging

from . import prompts
from .anchoring import locate_snippet
from .code_units import CodeUnit
from .edits import verify_patch
from .llm_client import LlmClient
from .messages import Message, MessageKind
from .prompt_context import context_for
from .review_cache import ReviewCache
from .snapshot import DocumentSnapshot
from .subscription import HandlerContext
from .team_payloads import Finding, ReviewRequest, UnitReview, Verification, VerifyPatch

log = logging.getLogger(__name__)
_SEVERITIES = {"error", "warning", "info"}


class ReviewAgent:
    name = "review"
    watches = (MessageKind.SUBTASK_VERIFY, MessageKind.SUBTASK_REVIEW_UNITS)
    concurrency = 4

    def __init__(self, llm: LlmClient, cache: ReviewCache | None = None) -> None:
        self.llm = llm
        self.cache = cache

    async def handle(self, message: Message, context: HandlerContext) -> None:
        if message.kind is MessageKind.SUBTASK_VERIFY:
            context.reply(self.verify(message.payload))
        else:
            context.reply(await self.review(message.payload, context.task_id))

    @staticmethod
    def verify(subtask: VerifyPatch) -> Verification:
        """Parses, changes something, and every line it really changes lies within the target's lines."""
        verdict = verify_patch(subtask.snapshot, subtask.proposal.patch)
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
            context = context_for(snapshot, unit.start_byte, unit.end_byte)
            answer = await self.llm.complete_json(
                prompts.review(snapshot.language_name or "text", unit.text, context),
                prompts.REVIEW_SCHEMA, task_id=task_id, max_tokens=400)
            raw = _clean(answer.get("findings"))
            if self.cache is not None:
                self.cache.put(key, raw)
        return UnitReview(unit, tuple(_anchor(snapshot, unit, raw)), cached)


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
