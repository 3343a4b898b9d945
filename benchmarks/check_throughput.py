"""Throughput of ``metagpt-lsp check --all`` on the batch engine: files per minute with ``--jobs 1`` and ``--jobs N``.

The model is the scripted LLM (a separate process) answering every request after a fixed latency, so the figures
measure the engine — how many files are in flight — and not this machine's CPU: with the LLM as the bottleneck,
``--jobs 2`` should come close to twice ``--jobs 1``. Each run gets a fresh review cache and no results file, so
every file is really reviewed. The repository is ``--files`` generated Python modules (three functions each) in a
temporary git repository.

    .venv/bin/python benchmarks/check_throughput.py --files 24 --latency 0.5 --jobs 1 2 4
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from metagpt_lsp.testing.scripted_editor import NO_FINDINGS, scripted_llm_process, server_environment_for

MODULE = '''"""Module {n}: small helpers."""


def scale_{n}(values, factor):
    """Each value times factor."""
    return [value * factor for value in values]


def total_{n}(values):
    """The sum of values, 0 for none."""
    return sum(values)


class Counter{n}:
    """Counts what it is given."""

    def __init__(self):
        self.count = 0

    def add(self, amount=1):
        self.count += amount
        return self.count
'''


def make_repository(root: Path, files: int) -> None:
    root.mkdir(parents=True)
    for n in range(files):
        (root / f"module_{n:03d}.py").write_text(MODULE.format(n=n), encoding="utf-8")
    for args in (["init", "-q"], ["add", "."], ["-c", "user.name=bench", "-c", "user.email=bench@example.com",
                                                 "commit", "-q", "-m", "modules"]):
        subprocess.run(["git", *args], cwd=root, check=True)


@dataclass
class Run:
    checked: int
    seconds: float
    first_s: float
    """Seconds until the first file finished: starting the command, Dask and the workers, and one file's work."""
    steady_rate: float
    """Files per minute from the first file finished to the last: the LLM-bound part of the run."""
    peak_mib: float

    @property
    def rate(self) -> float:
        return self.checked / self.seconds * 60


def files_per_minute(root: Path, base_url: str, cache: Path, jobs: int) -> Run:
    """One ``check --all`` run: its files/min overall and after the first file, and the peak RSS of the largest
    process of the run (a worker's or the driver's), sampling the process tree every 0.2 s while it runs."""
    command = [str(Path(sys.executable).with_name("metagpt-lsp")), "check", "--all", "--format", "json",
               "--jobs", str(jobs), "."]
    began = time.perf_counter()
    process = subprocess.Popen(command, cwd=root, env=server_environment_for(base_url, cache),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    finished: list[float] = []
    tail: list[str] = []

    def read_progress() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            if line.startswith("["):  # "[n/total] path: done", written as each file finishes
                finished.append(time.perf_counter() - began)
            tail[:] = (tail + [line])[-20:]

    output: list[str] = []
    readers = [threading.Thread(target=read_progress, daemon=True),
               threading.Thread(target=lambda: output.append(process.stdout.read() if process.stdout else ""),
                                daemon=True)]  # both pipes drained as the run goes, or a large report blocks it
    for reader in readers:
        reader.start()
    peak = 0
    while process.poll() is None:
        peak = max(peak, _largest_rss(process.pid))
        time.sleep(0.2)
    for reader in readers:
        reader.join()
    out = "".join(output)
    seconds = time.perf_counter() - began
    if process.returncode not in (0, 1):
        raise SystemExit(f"check --jobs {jobs} failed ({process.returncode}):\n{''.join(tail)}")
    summary = json.loads(out)["summary"]
    steady = (len(finished) - 1) / (finished[-1] - finished[0]) * 60 if len(finished) > 1 else 0.0
    return Run(summary["checked"], seconds, finished[0] if finished else seconds, steady, peak / 2**20)


def _largest_rss(pid: int) -> int:
    try:
        root = psutil.Process(pid)
        return max(p.memory_info().rss for p in [root, *root.children(recursive=True)])
    except psutil.Error:
        return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=24)
    parser.add_argument("--latency", type=float, default=0.5, help="seconds the scripted LLM waits per request")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        make_repository(root / "repo", args.files)
        script = {"default_reply": NO_FINDINGS, "latency_s": args.latency}
        with scripted_llm_process(script, root) as base_url:
            runs = {}
            for jobs in args.jobs:
                run = runs[jobs] = files_per_minute(root / "repo", base_url, root / f"cache-{jobs}.sqlite3", jobs)
                print(f"--jobs {jobs}: {run.checked} files in {run.seconds:.1f} s = {run.rate:.1f} files/min (first "
                      f"file after {run.first_s:.1f} s, then {run.steady_rate:.1f} files/min), largest process "
                      f"{run.peak_mib:.0f} MiB (LLM latency {args.latency:g} s/request, {os.cpu_count()} cores)")
    print(f"load average over the last minute: {os.getloadavg()[0]:.1f} (other work on this machine slows the "
          "start of each run most)")
    first = runs[args.jobs[0]]
    for jobs in args.jobs[1:]:
        print(f"--jobs {jobs} / --jobs {args.jobs[0]}: {runs[jobs].rate / first.rate:.2f}x overall, "
              f"{runs[jobs].steady_rate / first.steady_rate:.2f}x after the first file")


if __name__ == "__main__":
    main()
