"""A ``check --all --results F`` run killed halfway and resumed: no finished file done twice, none lost.

The repository is ``--files`` generated modules (as in ``check_throughput``), the model the scripted LLM in this
process (a thread of its own) answering every request after a fixed latency, so each request can be counted and
traced to the file it is about. For each way of stopping — SIGKILL of the whole process group (driver, Dask workers,
everything: a machine that died) and SIGINT to the process group (Ctrl-C on a terminal) — it starts ``check``, waits
until about half the files are finished (the progress lines on stderr say so, after each record is in F), stops it,
reruns it with the same F until it ends, and prints: the files finished before the stop (the records in F), the
requests the scripted server received in each run, the finished tasks the rerun did again (target 0) and the files
missing from F at the end (target 0).

    .venv/bin/python benchmarks/check_resume.py --files 300 --latency 0.5 --jobs 4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from check_throughput import make_repository

from metagpt_lsp.testing.scripted_editor import NO_FINDINGS, server_environment_for
from metagpt_lsp.testing.scripted_llm import ScriptedLlm

MODULE_OF = re.compile(r"\b(?:scale|total)_(\d+)\b|\bclass Counter(\d+)\b")
STOPS = {"SIGKILL of the process group": signal.SIGKILL, "SIGINT to the process group (Ctrl-C)": signal.SIGINT}


@contextmanager
def scripted_llm_thread(latency_s: float) -> Iterator[ScriptedLlm]:
    """The scripted LLM on an event loop of its own thread, so its record of requests can be read here."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="scripted LLM", daemon=True)
    thread.start()
    server = ScriptedLlm(default_reply=NO_FINDINGS, latency_s=latency_s)
    asyncio.run_coroutine_threadsafe(server.start(), loop).result()
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()


def modules_asked(server: ScriptedLlm, since: int) -> set[str]:
    """The files whose code the requests from ``since`` on were about."""
    asked = set()
    for request in server.requests[since:]:
        for match in MODULE_OF.finditer(request.last_user_message):
            asked.add(f"module_{int(match.group(1) or match.group(2)):03d}.py")
    return asked


def finished(results: Path) -> set[str]:
    done = set()
    for line in results.read_text(encoding="utf-8").splitlines() if results.exists() else []:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line the kill cut short
        if record.get("status") == "done":
            done.add(Path(record["path"]).name)
    return done


def check_command(jobs: int, results: Path) -> list[str]:
    return [str(Path(sys.executable).with_name("metagpt-lsp")), "check", "--all", "--format", "json", "--jobs",
            str(jobs), "--results", str(results), "."]


def stopped_halfway(repo: Path, env: dict[str, str], jobs: int, results: Path, files: int,
                    stop: signal.Signals) -> tuple[int, float]:
    """Start check, stop its process group with ``stop`` once half the files are finished; (exit status, seconds
    from the stop to its end)."""
    process = subprocess.Popen(check_command(jobs, results), cwd=repo, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    assert process.stderr is not None
    for line in process.stderr:
        progress = re.match(r"\[(\d+)/\d+\]", line)
        if progress and int(progress.group(1)) >= files // 2:
            break
    stopped = time.perf_counter()
    os.killpg(process.pid, stop)
    process.stderr.read()
    returncode = process.wait()
    return returncode, time.perf_counter() - stopped


def resumed(repo: Path, env: dict[str, str], jobs: int, results: Path) -> tuple[int, str]:
    done = subprocess.run(check_command(jobs, results), cwd=repo, env=env, capture_output=True, text=True)
    return done.returncode, done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--latency", type=float, default=0.5, help="seconds the scripted LLM waits per request")
    parser.add_argument("--jobs", type=int, default=4)
    args = parser.parse_args()
    print(f"{args.files} files, --jobs {args.jobs}, LLM latency {args.latency:g} s/request, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as folder, scripted_llm_thread(args.latency) as server:
        root = Path(folder)
        make_repository(root / "repo", args.files)
        for run, (name, stop) in enumerate(STOPS.items()):
            results = root / f"results-{run}.jsonl"
            env = server_environment_for(server.base_url, root / f"cache-{run}.sqlite3")
            first = len(server.requests)
            code, ended_s = stopped_halfway(root / "repo", env, args.jobs, results, args.files, stop)
            before = finished(results)
            second = len(server.requests)
            rerun_code, summary = resumed(root / "repo", env, args.jobs, results)
            repeated = modules_asked(server, second) & before
            lost = {f"module_{n:03d}.py" for n in range(args.files)} - finished(results)
            print(f"{name}: exit {code} {ended_s:.1f} s after the signal; {len(before)} of {args.files} files "
                  f"finished before it; requests {second - first} in the stopped run, "
                  f"{len(server.requests) - second} in the rerun (exit {rerun_code}: {summary}); finished tasks "
                  f"repeated by the rerun: {len(repeated)}; files lost: {len(lost)}")


if __name__ == "__main__":
    main()
