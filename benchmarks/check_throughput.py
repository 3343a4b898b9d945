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
import time
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


def files_per_minute(root: Path, base_url: str, cache: Path, jobs: int) -> tuple[float, int, float, float]:
    """(files/min, files checked, seconds, peak RSS in MiB of the largest process of the run: a worker's or the
    driver's), sampling the process tree every 0.2 s while ``check`` runs."""
    command = [str(Path(sys.executable).with_name("metagpt-lsp")), "check", "--all", "--format", "json",
               "--jobs", str(jobs), "."]
    began = time.perf_counter()
    process = subprocess.Popen(command, cwd=root, env=server_environment_for(base_url, cache),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
    while process.poll() is None:
        peak = max(peak, _largest_rss(process.pid))
        time.sleep(0.2)
    out, err = process.communicate()
    seconds = time.perf_counter() - began
    if process.returncode not in (0, 1):
        raise SystemExit(f"check --jobs {jobs} failed ({process.returncode}):\n{err[-2000:]}")
    summary = json.loads(out)["summary"]
    return summary["checked"] / seconds * 60, summary["checked"], seconds, peak / 2**20


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
            rates = {}
            for jobs in args.jobs:
                rate, checked, seconds, peak_mib = files_per_minute(
                    root / "repo", base_url, root / f"cache-{jobs}.sqlite3", jobs)
                rates[jobs] = rate
                print(f"--jobs {jobs}: {checked} files in {seconds:.1f} s = {rate:.1f} files/min, largest process "
                      f"{peak_mib:.0f} MiB (LLM latency {args.latency:g} s/request, {os.cpu_count()} cores)")
    first = args.jobs[0]
    for jobs in args.jobs[1:]:
        print(f"--jobs {jobs} / --jobs {first}: {rates[jobs] / rates[first]:.2f}x")


if __name__ == "__main__":
    main()
