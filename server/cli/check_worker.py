"""One file's check as a pure function of its inputs: what a Dask worker (or the driver, with ``--jobs 1``) runs.

``run_file_task(task, target, options)`` gets the file's text and the text to compare it with (HEAD's, a ``--diff``
ref's, or None for every unit) in the task itself, so a worker on another machine needs neither the file nor git.
It runs the agent team as a library — no LSP, no server — against the LLM ``target`` the driver chose for it:
syntax problems, then a review of the changed units (the same hunk-to-unit mapping as on-save review), then with
``--fix`` "explain and fix" on each finding in turn, as an editor would. It returns a plain JSON-able record.

A review the team could not finish raises :class:`TaskFailed` so that the driver retries it; the whole task is
bounded by ``options.task_timeout_s``. Imports only ``metagpt_lsp.agents`` (this module never touches server/).
"""

from __future__ import annotations

import asyncio
import difflib
import json
import os
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from metagpt_lsp.agents.llm import LlmSettings
    from metagpt_lsp.agents.team import ReviewPolicy

WORKER_MODULES = ("openai", "openai.resources.chat.completions", "httpcore", "httpcore2", "anyio._backends._asyncio",
                  "h11", "jiter", "truststore", "sqlite3", "doctest", "tree_sitter_python",
                  "metagpt_lsp.agents.llm.client", "metagpt_lsp.agents.syntax.snapshot", "metagpt_lsp.agents.edits",
                  "metagpt_lsp.agents.team.coordinator", "metagpt_lsp.agents.team.review_cache",
                  "metagpt_lsp.agents.team.git_changes", "metagpt_lsp.agents.team.graph_settings",
                  "metagpt_lsp.server.cli.check_worker")
"""What a task imports (a name that does not import is skipped): a local cluster's worker processes fork from one
process that imported them once."""
REVIEW_SOURCE = "metagpt-review"
SYNTAX_SOURCE = "metagpt-lsp"


class TaskFailed(RuntimeError):
    """The team could not finish this file (the LLM failed, or the task ran out of time): worth another try."""


@dataclass(frozen=True)
class FileTask:
    """One file to check: its text as the driver read it, and what it is compared with (None: every unit)."""

    key: str
    path: str
    uri: str
    text: str
    base_text: str | None
    content_hash: str
    """sha256 of the text as read: ``--apply`` writes only over a file that still has it."""


@dataclass(frozen=True)
class LlmTarget:
    """The endpoint a task talks to. The API key is read from ``api_key_env`` on the worker, never shipped."""

    base_url: str
    model: str
    embedded: bool = False
    api_key_env: str = "OPENAI_API_KEY"


@dataclass(frozen=True)
class TaskOptions:
    """What every task of a run is asked to do, from the same settings the server honours (``review.maxUnits``,
    ``team.*``, ``llm.*``); what changes a result is part of each task's key."""

    fix: bool = False
    task_timeout_s: float = 600.0
    max_units: int = 20
    """``review.maxUnits``: at most this many changed units of a file are reviewed."""
    run_code: bool = True
    """Claimed inputs and examples may run in the sandbox, as on any explicit request (``team.runCode``)."""
    fix_candidates: int = 1
    run_doctests: bool = False
    graph_json: str | None = None
    """The ``team.graph`` override as JSON (None: the default cooperation graph)."""
    review_policy: ReviewPolicy | None = None
    """``team.review.*`` (None: the defaults)."""
    llm: LlmSettings | None = None
    """``llm.*`` but the base URL and model, which each task's :class:`LlmTarget` names (None: the defaults)."""

    def as_key(self) -> str:
        llm = self.llm
        asked = "" if llm is None else f";llm={llm.max_tokens},{llm.temperature:g},{llm.repeat_penalty:g}"
        return (f"fix={int(self.fix)};max_units={self.max_units};run_code={int(self.run_code)}"
                f";fix_candidates={self.fix_candidates};run_doctests={int(self.run_doctests)}"
                f";graph={self.graph_json};policy={self.review_policy!r}{asked}")


@dataclass
class _Found:
    start_byte: int
    end_byte: int
    message: str
    severity: str
    source: str
    code: str
    quote: str = ""


def dask_setup(_worker: Any) -> None:
    """Dask's preload hook, run in each worker process of a local cluster (``--jobs N``) as it starts: Ctrl-C on the
    terminal reaches the whole process group, and it is the driver's to handle (it cancels what is in flight, keeps
    what finished and stops the workers); a worker that took it too would die with a traceback instead."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_file_task(task: FileTask, target: LlmTarget, options: TaskOptions) -> dict[str, Any]:
    """Check one file (blocking: a worker thread runs it). Raises :class:`TaskFailed` for a retry."""
    try:
        return asyncio.run(asyncio.wait_for(_check(task, target, options), options.task_timeout_s))
    except TimeoutError as error:
        raise TaskFailed(f"no result within {options.task_timeout_s:g} s (--timeout)") from error


async def _check(task: FileTask, target: LlmTarget, options: TaskOptions) -> dict[str, Any]:
    from metagpt_lsp.agents.llm import LlmClient, LlmEndpoint, LlmSettings, for_endpoint
    from metagpt_lsp.agents.syntax import DocumentSnapshot
    from metagpt_lsp.agents.team import ReviewCache, Team, graph_from_settings

    snapshot = DocumentSnapshot.open(task.uri, 1, task.text)
    record: dict[str, Any] = {"key": task.key, "path": task.path, "status": "done", "content_hash": task.content_hash,
                              "findings": [], "fixed": [], "notes": [], "usage": {"requests": 0, "tokens": 0}}
    found = _syntax_found(snapshot)
    if snapshot.tree is None:
        record["findings"] = [_as_record(snapshot, f) for f in found]
        return record
    endpoint = LlmEndpoint(target.base_url, target.model, os.environ.get(target.api_key_env) or None,
                           target.embedded)
    settings = for_endpoint(replace(options.llm or LlmSettings(), base_url=target.base_url, model=target.model),
                            endpoint)
    graph = graph_from_settings(json.loads(options.graph_json)) if options.graph_json else None
    cache = ReviewCache()
    llm = LlmClient(settings, endpoint)
    team = Team(llm, graph, cache, deadline_s=settings.task_deadline_s, fix_candidates=options.fix_candidates,
                run_doctests=options.run_doctests)
    try:
        found += await _review(team, snapshot, task.base_text, options)
        final = snapshot
        if options.fix:
            final, found = await _fix_all(team, snapshot, found, record, options.run_code)
        record["findings"] = [_as_record(final, f) for f in found]
        record["fixed_text"] = final.text if final is not snapshot else None
        total = llm.total_usage  # this client served this task only
        record["usage"] = {"requests": total.requests, "tokens": total.total_tokens}
    finally:
        await team.close()
        await llm.aclose()
        cache.close()
    return record


async def _review(team: Any, snapshot: Any, base_text: str | None, options: TaskOptions) -> list[_Found]:
    from metagpt_lsp.agents.team import ReviewPolicy, ReviewRequest, units_changed_from

    units = units_changed_from(snapshot, base_text).units[:options.max_units]
    if not units:
        return []
    request = ReviewRequest(snapshot, tuple(units), options.run_code, options.review_policy or ReviewPolicy())
    result = await team.review(request)
    if not result.ok:
        raise TaskFailed(f"review incomplete: {result.reason}")
    return [_Found(f.start_byte, f.end_byte, f.message, f.severity, REVIEW_SOURCE, f.code, f.quote)
            for f in result.findings]


def _syntax_found(snapshot: Any) -> list[_Found]:
    from metagpt_lsp.agents.syntax import syntax_problems

    return [_Found(p.start_byte, p.end_byte, p.message, "error", SYNTAX_SOURCE, "syntax")
            for p in syntax_problems(snapshot.tree, snapshot.source)]


async def _fix_all(team: Any, original: Any, found: list[_Found], record: dict[str, Any],
                   run_code: bool) -> tuple[Any, list[_Found]]:
    """Explain and fix each finding in turn on the evolving text, as ``check --fix`` over LSP does. Fixed findings
    keep their place in the original text; each gets the part of the final diff that falls on it."""
    from metagpt_lsp.agents.edits import locate_snippet
    from metagpt_lsp.agents.syntax import DocumentSnapshot
    from metagpt_lsp.agents.team import FixRequest

    current, pending = original, list(found)
    attempted: set[tuple[str, str]] = set()
    fixed: list[_Found] = []
    while True:
        finding = next((f for f in pending if (f.source, f.message) not in attempted), None)
        if finding is None:
            break
        attempted.add((finding.source, finding.message))
        known = finding.message if finding.source == REVIEW_SOURCE else None
        result = await team.explain_and_fix(FixRequest(current, finding.start_byte, finding.end_byte,
                                                       finding.message, finding.source, finding.code, known,
                                                       run_code))
        if not result.ok or not result.edits:
            line = current.position_at(finding.start_byte).line + 1
            record["notes"].append(f"{record['path']}:{line}: not fixed: {result.reason or 'no safe fix'}")
            continue
        data = current.source
        for edit in sorted(result.edits, key=lambda e: e.start_byte, reverse=True):
            data = data[:edit.start_byte] + edit.new_text.encode("utf-8", "surrogatepass") + data[edit.end_byte:]
        current = DocumentSnapshot.open(current.uri, current.version + 1, data.decode("utf-8", "surrogatepass"))
        first = next(f for f in found if (f.source, f.message) == (finding.source, finding.message))
        fixed.append(first)
        pending = _syntax_found(current)
        for other in found:
            if other.source != REVIEW_SOURCE or other in fixed:
                continue
            where = locate_snippet(current, other.quote) if other.quote else None
            if where is not None:
                pending.append(replace(other, start_byte=where[0], end_byte=where[1]))
    record["fixed"] = [dict(_as_record(original, f), fix=hunk) for f, hunk in _fix_hunks(original, current, fixed)]
    return current, pending


def _fix_hunks(original: Any, final: Any, fixed: list[_Found]) -> list[tuple[_Found, list[dict[str, Any]] | None]]:
    """Each line hunk of original -> final given to the fixed finding nearest to it (so together they rebuild the
    final text): the replacements as 1-based line ranges of the original and the new lines."""
    old, new = original.text.splitlines(keepends=True), final.text.splitlines(keepends=True)
    lines = [original.position_at(f.start_byte).line for f in fixed]
    owned: dict[int, list[dict[str, Any]]] = {}
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal" or not fixed:
            continue
        owner = min(range(len(fixed)), key=lambda k: 0 if i1 <= lines[k] < max(i2, i1 + 1) else
                    min(abs(lines[k] - i1), abs(lines[k] - i2)))
        owned.setdefault(owner, []).append({**_region(old, i1, i2), "new_text": "".join(new[j1:j2])})
    return [(f, owned.get(k)) for k, f in enumerate(fixed)]


def _region(lines: list[str], first: int, last: int) -> dict[str, int]:
    """Whole lines ``[first, last)`` as a 1-based region, columns in UTF-16 code units (SARIF's default); past
    the last line the region ends after its final character."""
    def place(index: int) -> tuple[int, int]:
        if index < len(lines) or not lines:
            return index + 1, 1
        return len(lines), len(lines[-1].encode("utf-16-le")) // 2 + 1

    (start_line, start_column), (end_line, end_column) = place(first), place(last)
    return {"start_line": start_line, "start_column": start_column, "end_line": end_line, "end_column": end_column}


def _as_record(snapshot: Any, found: _Found) -> dict[str, Any]:
    start, end = snapshot.position_at(found.start_byte), snapshot.position_at(found.end_byte)
    return {"line": start.line + 1, "column": start.character + 1, "end_line": end.line + 1,
            "end_column": end.character + 1, "severity": found.severity, "message": found.message,
            "source": found.source, "code": found.code, "quote": found.quote}
