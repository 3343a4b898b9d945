"""On-save review: the team reviews the functions and classes that changed since HEAD, and only those.

A save starts a review task for the document (cancelling the one in flight). The git hunks are mapped onto units
of the saved snapshot; units reviewed before (same text, same model, same prompt) come from the review cache
without a request. Only findings that survived cross-examination become diagnostics (source ``metagpt-review``):
Error or Warning when a claimed input really ran red, Information when review and diagnosis agree but nothing ran,
Hint (``team.review.unconfirmed``) or nothing otherwise; ``data`` carries the evidence. They are stamped with the
saved version — dropped if the document changed meanwhile — and ride along with later edits as long as the code
they quote is still there. Claimed inputs run only when the caller says code may run (``may_run_code``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from lsprotocol import types

from metagpt_lsp.agents.edits import locate_snippet
from metagpt_lsp.agents.syntax import DocumentSnapshot

from .diagnostics import lsp_range
from .progress_reporting import TaskProgress

log = logging.getLogger(__name__)

PRODUCER = "review"
SOURCE = "metagpt-review"
_SEVERITIES = {"error": types.DiagnosticSeverity.Error, "warning": types.DiagnosticSeverity.Warning,
               "info": types.DiagnosticSeverity.Information, "hint": types.DiagnosticSeverity.Hint}
_CARRY_WINDOW_LINES = 30


def finding_diagnostic(snapshot: DocumentSnapshot, finding: Any) -> types.Diagnostic:
    from metagpt_lsp.agents.team import evidence_data

    return types.Diagnostic(
        range=lsp_range(snapshot, finding.start_byte, finding.end_byte),
        message=finding.message,
        severity=_SEVERITIES.get(finding.severity, types.DiagnosticSeverity.Warning),
        source=SOURCE,
        code=finding.code,
        data={"cause": finding.message, "quote": finding.quote, "unit": finding.unit_name,
              "evidence": evidence_data(finding)},
    )


def review_policy(server: Any) -> Any:
    """The ``team.review.*`` thresholds as the team takes them."""
    from metagpt_lsp.agents.team import ReviewPolicy

    review = server.settings.team.review
    return ReviewPolicy(review.error_confidence, review.warning_confidence, review.information_confidence,
                        review.unconfirmed)


async def review_document(server: Any, uri: str, units: tuple[Any, ...] | None = None,
                          title: str = "Reviewing changed code", whole_file: bool = False,
                          may_run_code: bool = False) -> Any:
    """Review ``units`` (default: what changed since HEAD, or every unit with ``whole_file``) of the document's
    current snapshot; publish findings. ``may_run_code``: claimed inputs may run in the sandbox."""
    from metagpt_lsp.agents.team import ReviewRequest, changed_units, every_unit

    snapshot = server.documents.get(uri)
    if snapshot is None or snapshot.tree is None:
        return None
    if units is None:
        changed = await asyncio.to_thread(every_unit if whole_file else changed_units, snapshot)
        units = changed.units
        log.info("%s: %d changed unit(s) to review (%s)", uri, len(units), changed.basis)
    limit = server.settings.review.max_units
    if len(units) > limit:
        log.info("%s: reviewing the first %d of %d changed units (review.maxUnits)", uri, limit, len(units))
        units = units[:limit]
    if not units:
        return _publish(server, snapshot, [])
    team = await server.team_host.team()
    async with TaskProgress(server, title) as progress:
        result = await team.review(ReviewRequest(snapshot, tuple(units), may_run_code, review_policy(server)),
                                   progress.report)
    if not result.ok:
        server.tell_user(f"review incomplete: {result.reason}")
    log.info("%s v%d: %s; %d finding(s), %d request(s), %d prompt tokens", uri, snapshot.version, result.reason,
             len(result.findings), result.usage.requests, result.usage.prompt_tokens)
    _publish(server, snapshot, [finding_diagnostic(snapshot, finding) for finding in result.findings])
    return result


def _publish(server: Any, snapshot: DocumentSnapshot, diagnostics: list[types.Diagnostic]) -> None:
    current = server.documents.get(snapshot.uri)
    if current is None or current.version != snapshot.version:
        log.info("%s: review of version %d dropped, the document is at %s", snapshot.uri, snapshot.version,
                 current.version if current else "closed")
        return
    if server.diagnostics.update(snapshot.uri, snapshot.version, PRODUCER, diagnostics):
        if server.pull_diagnostics:
            workspace = server.client_capabilities.workspace
            if workspace and workspace.diagnostics and workspace.diagnostics.refresh_support:
                server.workspace_diagnostic_refresh(None)
        else:
            server.text_document_publish_diagnostics(server.diagnostics.publish_params(snapshot.uri))


def carry_forward(snapshot: DocumentSnapshot, previous: list[types.Diagnostic]) -> list[types.Diagnostic]:
    """Review diagnostics of the previous version that still quote code of this one, moved to where it is now."""
    carried = []
    for diagnostic in previous:
        quote = (diagnostic.data or {}).get("quote") if isinstance(diagnostic.data, dict) else None
        if not quote:
            continue
        line = min(diagnostic.range.start.line, snapshot.lines.line_count - 1)
        first = snapshot.lines.line_start(max(line - _CARRY_WINDOW_LINES, 0))
        last = snapshot.lines.line_start(line + _CARRY_WINDOW_LINES + 1)
        found = locate_snippet(snapshot, quote, (first, last))
        if found is None or not (first <= found[0] < last):
            continue
        carried.append(types.Diagnostic(
            range=lsp_range(snapshot, *found), message=diagnostic.message, severity=diagnostic.severity,
            source=diagnostic.source, code=diagnostic.code, data=diagnostic.data))
    return carried
