"""Keystroke latency: one-character ``didChange`` → the ``publishDiagnostics`` for that version, over stdio.

Typing is realistic: in a file of the CPython standard library, a fresh line is opened inside several function
bodies spread through the file (untimed), then an identifier is typed into them one character per ``didChange``,
visiting the lines round robin so that consecutive keystrokes land far apart. Every keystroke goes to metagpt-lsp
and to ``bare_server.py`` (a bare pygls server: its own workspace applies the change, it publishes an empty list —
the protocol floor), alternating which server goes first, and waits for the publish stamped with its version.

Prints p50/p99/mean/max per file for both and the ratios. Targets: p50 ratio <= 1.3, p99 ratio <= 1.5.

    python benchmarks/keystroke_latency.py [DATA_DIR] [--keystrokes 1000] [--sites 16] [--warmup 40]

DATA_DIR holds ``cpython-3.11.7/`` (default /work/shared/data/perf, else ../shared/data/perf next to the repo).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from stdio_client import StdioClient

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path("/work/shared/data/perf")
FALLBACK_DATA = REPO.parent / "shared" / "data" / "perf"
FILES = ("cpython-3.11.7/_pydecimal.py", "cpython-3.11.7/typing.py")
OURS = [sys.executable, "-m", "metagpt_lsp.server", "--stdio", "--log-level", "warning"]
BARE = [sys.executable, str(REPO / "benchmarks" / "bare_server.py")]
IDENTIFIER = "pending_total_count_"
TARGET_P50, TARGET_P99 = 1.3, 1.5
WAIT_S = 30.0


def data_dir(given: str | None) -> Path:
    for candidate in ([Path(given)] if given else [DEFAULT_DATA, FALLBACK_DATA]):
        if all((candidate / name).is_file() for name in FILES):
            return candidate
    raise SystemExit(f"no perf data under {given or f'{DEFAULT_DATA} or {FALLBACK_DATA}'} (want {', '.join(FILES)})")


@dataclass
class TypingSite:
    """A line opened inside a function body, and how much of the identifier has been typed on it."""

    line: int
    indent: str
    typed: int = 0


def typing_sites(lines: list[str], count: int) -> list[TypingSite]:
    """``count`` function-body statements spread through the file: the fresh line goes just above each."""
    candidates = [number for number, text in enumerate(lines)
                  if re.match(r"^( {8,})(return|self\.|[a-z_]\w* = )", text)]
    step = max(len(candidates) // count, 1)
    chosen = candidates[step // 2::step][:count]
    # Opening a line above site i moves every later site down by one.
    return [TypingSite(line + shift, re.match(r"^ *", lines[line]).group(0)) for shift, line in enumerate(chosen)]


@dataclass
class Session:
    name: str
    client: StdioClient
    uri: str
    version: int = 1
    samples: list[float] = field(default_factory=list)

    async def change(self, line: int, character: int, text: str) -> float:
        """Insert ``text`` at (line, character) as one incremental change; seconds until its diagnostics arrived."""
        self.version += 1
        published = self.client.published(self.uri, self.version)
        position = {"line": line, "character": character}
        sent_at = time.perf_counter()
        self.client.notify("textDocument/didChange", {
            "textDocument": {"uri": self.uri, "version": self.version},
            "contentChanges": [{"range": {"start": position, "end": position}, "text": text}]})
        _params, received_at = await asyncio.wait_for(published, WAIT_S)
        return received_at - sent_at


async def open_session(name: str, command: list[str], uri: str, text: str) -> Session:
    client = await StdioClient.start(command)
    await client.initialize()
    published = client.published(uri, 1)
    client.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1,
                                                            "text": text}})
    await asyncio.wait_for(published, WAIT_S)
    return Session(name, client, uri)


async def measure_file(path: Path, keystrokes: int, sites_wanted: int, warmup: int) -> list[Session]:
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    uri = path.resolve().as_uri()
    sessions = [await open_session("metagpt-lsp", OURS, uri, text), await open_session("bare pygls", BARE, uri, text)]
    try:
        sites = typing_sites(lines, sites_wanted)
        for site in sites:  # open the fresh lines (untimed)
            for session in sessions:
                await session.change(site.line, 0, site.indent + "\n")
        for number in range(warmup + keystrokes):
            site = sites[number % len(sites)]
            char = IDENTIFIER[site.typed % len(IDENTIFIER)]
            column = len(site.indent) + site.typed
            order = sessions if number % 2 == 0 else sessions[::-1]
            for session in order:
                elapsed = await session.change(site.line, column, char)
                if number >= warmup:
                    session.samples.append(elapsed)
            site.typed += 1
    finally:
        for session in sessions:
            await session.client.close()
    return sessions


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def report(path: Path, sessions: list[Session]) -> tuple[float, float]:
    lines = path.read_text(encoding="utf-8").count("\n")
    figures = {}
    for session in sessions:
        ms = [sample * 1000 for sample in session.samples]
        figures[session.name] = (percentile(ms, 0.50), percentile(ms, 0.99), statistics.fmean(ms), max(ms))
        p50, p99, mean, worst = figures[session.name]
        print(f"  {path.name:<14} {lines:>6}  {session.name:<12} {p50:8.3f} {p99:8.3f} {mean:8.3f} {worst:8.3f}")
    ours, bare = figures["metagpt-lsp"], figures["bare pygls"]
    ratio50, ratio99 = ours[0] / bare[0], ours[1] / bare[1]
    verdict = "met" if ratio50 <= TARGET_P50 and ratio99 <= TARGET_P99 else "MISSED"
    print(f"  {'':<14} {'':>6}  {'ratio':<12} {ratio50:8.2f} {ratio99:8.2f}"
          f"   (target p50 <= {TARGET_P50}, p99 <= {TARGET_P99}: {verdict})")
    return ratio50, ratio99


async def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    options.add_argument("data_dir", nargs="?", help="folder holding cpython-3.11.7/ (see the module docstring)")
    options.add_argument("--keystrokes", type=int, default=1000, help="timed keystrokes per file (default 1000)")
    options.add_argument("--sites", type=int, default=16, help="function bodies typed into, round robin")
    options.add_argument("--warmup", type=int, default=40, help="untimed keystrokes first (default 40)")
    args = options.parse_args()
    folder = data_dir(args.data_dir)
    print(f"keystroke latency: didChange -> publishDiagnostics over stdio, {args.keystrokes} timed keystrokes per "
          f"file over {args.sites} function bodies; load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs")
    print(f"  {'file':<14} {'lines':>6}  {'server':<12} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} {'max ms':>8}")
    met = True
    for name in FILES:
        path = folder / name
        ratio50, ratio99 = report(path, await measure_file(path, args.keystrokes, args.sites, args.warmup))
        met = met and ratio50 <= TARGET_P50 and ratio99 <= TARGET_P99
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
