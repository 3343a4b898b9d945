"""Running a check's tasks so that faults cost little: a bounded window in flight, retries, timeouts, a results log.

The driver keeps at most ``max_in_flight`` tasks submitted. A task that fails (the team could not finish, the LLM
kept failing, its worker died more often than Dask allows, no result within the timeout) is tried again after a
backoff that doubles, on the next endpoint, up to ``retries`` times; then it is recorded as failed — reported, not
lost — and a rerun tries it again. Every finished task is appended to the results file (JSON Lines, flushed at once),
so a rerun with the same file skips every task whose key it holds. Ctrl-C cancels what is in flight and keeps what
finished.

Two runners: :class:`ThreadRunner` (``--jobs 1``: one task at a time in this process, no Dask needed) and
:class:`DaskRunner` (a ``LocalCluster`` of N worker processes, or an existing scheduler). Dask itself reruns the
tasks of a worker that died on another worker; this loop only sees the result.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import heapq
import json
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from . import check_worker
from .check_plan import share_endpoints
from .check_worker import WORKER_MODULES, FileTask, LlmTarget, TaskOptions, run_file_task

INSTALL_HINT = "--jobs and --scheduler need Dask: pip install 'metagpt-lsp[distributed]'"


class Runner(Protocol):
    window: int
    """How many tasks to keep submitted: the runner's slots, and for a cluster a task queued behind each."""

    def submit(self, task: FileTask, target: LlmTarget, options: TaskOptions, attempt: int) -> Any: ...

    def cancel(self, future: Any) -> None: ...

    def close(self) -> None: ...


class ThreadRunner:
    """Runs tasks on daemon threads of this process (one slot by default): today's single-process check."""

    def __init__(self, slots: int = 1) -> None:
        self.window = slots

    def submit(self, task: FileTask, target: LlmTarget, options: TaskOptions, attempt: int) -> Any:
        future: concurrent.futures.Future[dict[str, Any]] = concurrent.futures.Future()

        def work() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(run_file_task(task, target, options))
            except BaseException as error:  # noqa: BLE001 - handed to the driver, which decides
                future.set_exception(error)

        threading.Thread(target=work, name=f"check {task.path}", daemon=True).start()
        return future

    def cancel(self, future: Any) -> None:
        future.cancel()

    def close(self) -> None:
        return None


class DaskRunner:
    """Tasks on a Dask cluster: a ``LocalCluster`` of ``jobs`` worker processes, or the one at ``scheduler``."""

    def __init__(self, jobs: int = 1, scheduler: str | None = None, processes: bool = True) -> None:
        try:
            import distributed
        except ImportError as error:
            raise SystemExit(INSTALL_HINT) from error
        import logging

        self._cluster = None
        if scheduler is None:
            with _forked_workers(processes):
                self._cluster = distributed.LocalCluster(
                    n_workers=jobs, threads_per_worker=1, processes=processes, dashboard_address=None,
                    silence_logs=logging.CRITICAL, env=dict(os.environ) if processes else None,
                    preload=[check_worker.__name__] if processes else [])
            self.client = distributed.Client(self._cluster)
        else:
            self.client = distributed.Client(scheduler)
        self.window = 2 * max(1, sum(self.client.nthreads().values()))

    def submit(self, task: FileTask, target: LlmTarget, options: TaskOptions, attempt: int) -> Any:
        return self.client.submit(run_file_task, task, target, options, key=f"check-{task.key[:20]}-{attempt}",
                                  pure=False)

    def cancel(self, future: Any) -> None:
        future.cancel()

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


class DaskStart:
    """A :class:`DaskRunner` starting on a thread of its own, so that the driver reads the settings and plans the
    tasks meanwhile (the cluster's processes start on the other cores); :meth:`runner` waits for it, :meth:`discard`
    closes it once started when the run needs no cluster after all (every task already in the results file)."""

    def __init__(self, jobs: int, scheduler: str | None, processes: bool) -> None:
        pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="dask start")
        self._future = pool.submit(DaskRunner, jobs, scheduler, processes)
        pool.shutdown(wait=False)
        self._taken = False

    def runner(self) -> DaskRunner:
        self._taken = True
        return self._future.result()

    def discard(self) -> None:
        if not self._taken:
            self._taken = True
            self._future.add_done_callback(_close_started)


def _close_started(started: concurrent.futures.Future[DaskRunner]) -> None:
    if started.exception() is None:
        started.result().close()


def _forked_workers(processes: bool) -> contextlib.AbstractContextManager[Any]:
    """Worker processes forked from one forkserver that imported Dask and the worker's modules once, instead of
    spawned fresh: spawning imports them in every worker (~1.5 s of CPU each, all at once, at the start of a run),
    which on a small machine costs more than the model's latency saves. Each worker is handed this process's
    environment (the forkserver keeps the one it started with)."""
    import multiprocessing

    if not processes or "forkserver" not in multiprocessing.get_all_start_methods():
        return contextlib.nullcontext()
    import dask
    from distributed.utils import get_mp_context

    config = dask.config.set({"distributed.worker.multiprocessing-method": "forkserver"})
    get_mp_context().set_forkserver_preload(["distributed", *WORKER_MODULES])
    return config


class ResultsLog:
    """The JSON Lines file of finished tasks; the records already in it, by key (the last one wins)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.done: dict[str, dict[str, Any]] = {}
        self._file: Any = None
        if path is not None and path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short when a run was killed mid-write
                if isinstance(record, dict) and record.get("status") == "done" and "key" in record:
                    self.done[record["key"]] = record

    def append(self, record: dict[str, Any]) -> None:
        if self.path is None:
            return
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            cut_short = _ends_cut_short(self.path)
            self._file = self.path.open("a", encoding="utf-8")
            if cut_short:  # a run killed mid-write left half a line: never glue the next record onto it
                self._file.write("\n")
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def _ends_cut_short(path: Path) -> bool:
    """Whether the file's last line has no line break (a run was killed while writing it)."""
    try:
        with path.open("rb") as handle:
            if handle.seek(0, os.SEEK_END) == 0:
                return False
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) != b"\n"
    except FileNotFoundError:
        return False


@dataclass
class RunPolicy:
    retries: int = 2
    backoff_s: float = 1.0
    max_in_flight: int | None = None
    """At most this many tasks submitted at once (default: the runner's window)."""


@dataclass
class RunOutcome:
    records: list[dict[str, Any]]
    """One per task, in task order: done (fresh or from the results file) or failed; none for unfinished ones."""
    reused: int = 0
    interrupted: bool = False
    attempts: dict[str, int] = field(default_factory=dict)


@dataclass(order=True)
class _Retry:
    ready_at: float
    index: int
    attempt: int


def run_tasks(tasks: list[FileTask], targets: list[LlmTarget], options: TaskOptions, runner: Runner,
              log: ResultsLog, policy: RunPolicy, on_record: Callable[[dict[str, Any]], None] = lambda _r: None,
              ) -> RunOutcome:
    """Run every task not already in ``log``; each finished record goes to ``log`` and ``on_record`` at once."""
    results: dict[int, dict[str, Any]] = {}
    outcome = RunOutcome([])
    todo: list[int] = []
    for index, task in enumerate(tasks):
        if task.key in log.done:
            results[index] = dict(log.done[task.key], path=task.path, reused=True)
            outcome.reused += 1
            on_record(results[index])
        else:
            todo.append(index)
    finished: queue.Queue[tuple[int, int, Any]] = queue.Queue()
    in_flight: dict[Any, tuple[int, int, float]] = {}
    retries: list[_Retry] = []
    window = policy.max_in_flight or runner.window
    guard_s = 2 * options.task_timeout_s + 30  # the worker times itself out first; this catches a hung worker
    fresh: Iterator[int] = iter(todo)
    exhausted = False

    def submit(index: int, attempt: int) -> None:
        target = share_endpoints(targets, index, attempt)
        future = runner.submit(tasks[index], target, options, attempt)
        in_flight[future] = (index, attempt, time.monotonic() + guard_s)
        future.add_done_callback(lambda f: finished.put((index, attempt, f)))
        outcome.attempts[tasks[index].path] = attempt + 1

    def settle(index: int, attempt: int, error: str) -> None:
        if attempt < policy.retries:
            heapq.heappush(retries, _Retry(time.monotonic() + policy.backoff_s * 2 ** attempt, index, attempt + 1))
            return
        record = {"key": tasks[index].key, "path": tasks[index].path, "status": "failed",
                  "error": f"{error} (after {attempt + 1} attempt(s))"}
        results[index] = record
        log.append(record)
        on_record(record)

    try:
        while True:
            now = time.monotonic()
            while len(in_flight) < window and retries and retries[0].ready_at <= now:
                retry = heapq.heappop(retries)
                submit(retry.index, retry.attempt)
            while len(in_flight) < window and not exhausted:
                upcoming = next(fresh, None)
                if upcoming is None:
                    exhausted = True
                else:
                    submit(upcoming, 0)
            if not in_flight and not retries and exhausted:
                break
            deadlines = [deadline for _i, _a, deadline in in_flight.values()] + [r.ready_at for r in retries[:1]]
            try:
                index, attempt, future = finished.get(timeout=max(0.0, min(deadlines) - now) if deadlines else None)
            except queue.Empty:
                for future, (index, attempt, deadline) in list(in_flight.items()):
                    if deadline <= time.monotonic():
                        del in_flight[future]
                        runner.cancel(future)
                        settle(index, attempt, f"no result within {guard_s:g} s")
                continue
            if in_flight.pop(future, None) is None:
                continue  # already given up on (timed out)
            error = _failure(future)
            if error is not None:
                settle(index, attempt, error)
                continue
            record = dict(future.result(), attempts=attempt + 1)
            results[index] = record
            log.append(record)
            on_record(record)
    except KeyboardInterrupt:
        outcome.interrupted = True
        for future in in_flight:
            runner.cancel(future)
    outcome.records = [results[index] for index in sorted(results)]
    return outcome


def _failure(future: Any) -> str | None:
    """Why a finished future has no result, or None when it has one."""
    if future.cancelled():
        return "cancelled"
    try:
        error = future.exception()
    except BaseException as cancelled:  # noqa: BLE001 - Dask raises CancelledError here for a cancelled task
        return f"{type(cancelled).__name__}: {cancelled}"
    if error is None:
        return None
    return f"{type(error).__name__}: {error}"
