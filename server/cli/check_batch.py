"""``check`` over whole repositories: the agent team as a library on Dask workers, resumable, text/JSON/SARIF out.

Used when any of ``--jobs N`` (N > 1), ``--scheduler``, ``--results``, ``--diff``, ``--endpoint``, ``--settings``,
``--model`` or a ``--format`` other than text is given; plain ``check PATH`` still drives the real server over LSP.
Each task's team is built from the settings the server would use (``--settings``: ``review.maxUnits``, ``team.*``,
``llm.*``; the defaults otherwise). The driver plans a task per file (``check_plan``) while a cluster starts, runs
them (``check_engine``: in this process for ``--jobs 1``, on a ``LocalCluster`` or an existing scheduler
otherwise), writes ``--apply`` fixes only over files unchanged since
their task read them, and prints the report (``check_report``). Exit status as before: 0 nothing remains, 1
findings remain (or fixes shown but not written), 2 a path or task could not be checked (130 after Ctrl-C).

With the embedded model the driver starts one model server and every worker of this machine talks to it; with
``--scheduler`` the workers may be elsewhere, so the endpoints must be named (``--endpoint``).
"""

from __future__ import annotations

import difflib
import json
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .check_engine import INSTALL_HINT, DaskStart, ResultsLog, Runner, RunPolicy, ThreadRunner, run_tasks
from .check_plan import content_hash, plan_tasks
from .check_report import Progress, finding_line, to_json, to_sarif
from .check_worker import LlmTarget, TaskOptions


@dataclass
class BatchOptions:
    jobs: int = 1
    scheduler: str | None = None
    endpoints: list[str] = field(default_factory=list)
    model: str | None = None
    settings: str | None = None
    results: str | None = None
    diff: str | None = None
    output_format: str = "text"
    fix: bool = False
    apply: bool = False
    review_all: bool = False
    task_timeout_s: float = 600.0
    retries: int = 2
    backoff_s: float = 1.0
    max_in_flight: int | None = None
    processes: bool = True
    """Worker processes (False: worker threads in this process, for tests)."""


def read_settings(path: str | None) -> tuple[Any, list[str], str | None, list[str]]:
    """The settings tree of an editor settings JSON file (bare or under ``metagptLsp``), as the server would parse
    it — a bad value keeps its default and is reported — with ``llm.endpoints`` (check's own key: base URLs to share
    the files out over) taken out: (settings, endpoints, llm.model, problems)."""
    from ..settings import SECTION, Settings, parse_settings

    if path is None:
        return Settings(), [], None, []
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if isinstance(data, dict) and isinstance(data.get(SECTION), dict):
        data = data[SECTION]
    llm = data.get("llm") if isinstance(data, dict) else None
    urls: list[str] = []
    if isinstance(llm, dict):
        raw_urls = llm.get("endpoints") or ([llm["baseUrl"]] if isinstance(llm.get("baseUrl"), str) else [])
        urls = [str(url) for url in raw_urls]
        data = dict(data, llm={key: value for key, value in llm.items() if key != "endpoints"})
    settings, problems = parse_settings(data)
    return settings, urls, settings.llm.model, [str(problem) for problem in problems]


def task_options(settings: Any, options: BatchOptions) -> TaskOptions:
    """What each task is asked to do: the same ``review.maxUnits``, ``team.*`` and ``llm.*`` the server honours
    for an explicit review or fix (code may run unless ``team.runCode`` is "never" or the workspace is untrusted)."""
    from metagpt_lsp.agents.team import ReviewPolicy

    from ..settings import may_run_code

    team = settings.team
    review = team.review
    return TaskOptions(
        fix=options.fix or options.apply, task_timeout_s=options.task_timeout_s,
        max_units=settings.review.max_units, run_code=may_run_code(settings, on_save=False),
        fix_candidates=team.fix_candidates, run_doctests=team.run_doctests,
        graph_json=json.dumps(team.graph, sort_keys=True) if team.graph else None,
        review_policy=ReviewPolicy(review.error_confidence, review.warning_confidence,
                                   review.information_confidence, review.unconfirmed),
        llm=replace(settings.llm, base_url=None, model=None))


def dask_available() -> bool:
    try:
        import distributed  # noqa: F401 - only whether it imports
    except ImportError:
        return False
    return True


def run_batch(files: list[Path], complaints: list[str], options: BatchOptions) -> int:
    if (options.jobs > 1 or options.scheduler) and not dask_available():
        print(f"metagpt-lsp check: {INSTALL_HINT}", file=sys.stderr)
        return 2
    cluster = DaskStart(options.jobs, options.scheduler, options.processes) if (
        options.jobs > 1 or options.scheduler) else None
    try:
        return _run_batch(files, complaints, options, cluster)
    finally:
        if cluster is not None:
            cluster.discard()


def _run_batch(files: list[Path], complaints: list[str], options: BatchOptions, cluster: DaskStart | None) -> int:
    from metagpt_lsp.agents.llm import LlmSettings, resolve_endpoint

    from ..version import __version__

    settings, urls, settings_model, settings_problems = read_settings(options.settings)
    for problem in settings_problems:
        print(f"note: {problem}", file=sys.stderr)
    urls = options.endpoints or urls
    key_env = settings.llm.api_key_env
    endpoint = resolve_endpoint(LlmSettings(model=options.model or settings_model, api_key_env=key_env))
    embedded = None
    if urls:
        targets = [LlmTarget(url.rstrip("/"), endpoint.model if not endpoint.embedded else
                             options.model or settings_model or "gpt-4o-mini", api_key_env=key_env) for url in urls]
    elif not endpoint.embedded:
        targets = [LlmTarget(endpoint.base_url or "", endpoint.model, api_key_env=key_env)]
    elif options.scheduler is not None:
        print("with --scheduler the workers may run elsewhere: name the model servers they can reach with "
              "--endpoint URL (repeatable) or llm.endpoints", file=sys.stderr)
        return 2
    else:
        embedded, targets = _start_embedded(endpoint.model)
        if embedded is None:
            return 2
    asked = task_options(settings, options)
    plan = plan_tasks(files, asked, targets[0].model, review_all=options.review_all, diff_ref=options.diff)
    log = ResultsLog(Path(options.results) if options.results else None)
    everything_done = all(t.key in log.done for t in plan.tasks)
    runner: Runner = ThreadRunner() if cluster is None or everything_done else cluster.runner()
    progress = Progress(len(plan.tasks))
    try:
        outcome = run_tasks(plan.tasks, targets, asked, runner, log,
                            RunPolicy(options.retries, options.backoff_s, options.max_in_flight), progress)
    finally:
        progress.close()
        log.close()
        runner.close()
        if embedded is not None and embedded.server is not None:
            embedded.server.stop_now()
    problems = complaints + plan.problems
    problems += [f"{r['path']}: not checked: {r['error']}" for r in outcome.records if r["status"] == "failed"]
    if outcome.interrupted:
        finished = len(outcome.records)
        problems.append(f"interrupted: {finished} of {len(plan.tasks)} file(s) finished"
                        + (f"; rerun with --results {options.results} to continue" if options.results else ""))
    done = [r for r in outcome.records if r["status"] == "done"]
    written = _apply(done, problems) if options.apply else set()
    remaining = sum(len(r["findings"]) for r in done)
    fixes = sum(len(r.get("fixed", [])) for r in done)
    unwritten = fixes - sum(len(r.get("fixed", [])) for r in done if r["path"] in written)
    remaining += unwritten if options.apply else 0
    summary = {"files": len(plan.tasks), "checked": len(done), "reused": outcome.reused,
               "failed": len(outcome.records) - len(done), "unchanged": plan.unchanged,
               "findings": remaining, "fixes": fixes, "fixes_written": fixes - unwritten if options.apply else 0,
               "interrupted": outcome.interrupted}
    if options.output_format == "json":
        print(to_json(outcome.records, summary, problems))
    elif options.output_format == "sarif":
        print(json.dumps(to_sarif(done, __version__, Path.cwd()), indent=2))
    else:
        _print_text(done, {task.key: task.text for task in plan.tasks}, written, options.apply)
    for problem in dict.fromkeys(problems):
        print(f"note: {problem}", file=sys.stderr)
    line = f"{len(done)} file(s) checked ({outcome.reused} from --results), {remaining} finding(s)"
    if options.fix or options.apply:
        line += (f" left, {fixes} fix(es) "
                 f"{'written' if options.apply else 'shown as a diff (use --apply to write them)'}")
    print(line, file=sys.stderr)
    if outcome.interrupted:
        return 130
    if complaints or plan.problems or len(done) < len(plan.tasks):
        return 2
    return 1 if remaining or (fixes and not options.apply) else 0


def _start_embedded(model: str) -> tuple[Any, list[LlmTarget]]:
    """One embedded model server for every worker of this machine (started here, its URL handed to them)."""
    import asyncio

    from metagpt_lsp.agents.llm.embedded import EmbeddedModel

    embedded = EmbeddedModel()
    notice = embedded.unavailable_notice()
    if notice:
        print(notice, file=sys.stderr)
        return None, []
    url = asyncio.run(embedded.base_url())
    return embedded, [LlmTarget(url, model, embedded=True)]


def _apply(done: list[dict[str, Any]], problems: list[str]) -> set[str]:
    """Write each fixed text over its file, unless the file changed on disk since its task read it."""
    written: set[str] = set()
    for record in done:
        if not record.get("fixed_text"):
            continue
        path = Path(record["path"])
        try:
            now = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError) as error:
            problems.append(f"{path}: fix not written: cannot read it back ({error})")
            continue
        if content_hash(now) != record["content_hash"]:
            problems.append(f"{path}: fix not written: the file changed on disk since its task read it")
            continue
        path.write_text(record["fixed_text"], encoding="utf-8", newline="")
        written.add(record["path"])
    return written


def _print_text(done: list[dict[str, Any]], texts: dict[str, str], written: set[str], apply: bool) -> None:
    for record in done:
        path = record["path"]
        for finding in record.get("fixed", []):
            fixed = "fixed" if path in written else "fixed in the diff below" if not apply else "fix not written"
            print(f"{finding_line(path, finding)} ({fixed})")
        for finding in record["findings"]:
            print(finding_line(path, finding))
        fixed_text = record.get("fixed_text")
        if fixed_text:
            before = texts[record["key"]]
            sys.stdout.writelines(difflib.unified_diff(before.splitlines(keepends=True),
                                                       fixed_text.splitlines(keepends=True), f"a/{path}", f"b/{path}"))
        for note in record.get("notes", []):
            print(f"note: {note}", file=sys.stderr)

