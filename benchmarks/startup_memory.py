"""Start-up and memory: how fast a cold server answers ``initialize``, and how much memory many open documents take.

* ``initialize`` round trip: from starting the process to the ``initialize`` result, as an editor sees it when it
  launches the server (interpreter start and imports included); the median of several cold starts.
  Target <= 300 ms. A bare pygls server (benchmarks/bare_server.py) is timed the same way, start for start in
  alternation, as the floor: on a busy machine both move together and the difference is what is ours.
* Resident memory: the three perf files (_pydecimal.py, typing.py, argparse.py), each opened 50 times under different
  URIs, every open answered by its diagnostics; then the RSS of the server process (psutil). Target <= 250 MB.
  Documents with identical text share one tree, so the same run is repeated with every copy made different (a
  comment line of its own) to show what many distinct documents cost.

    python benchmarks/startup_memory.py [DATA_DIR] [--starts 7] [--copies 50]

DATA_DIR holds ``cpython-3.11.7/`` (default /work/shared/data/perf, else ../shared/data/perf next to the repo).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
from pathlib import Path

import psutil
from stdio_client import StdioClient

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path("/work/shared/data/perf")
FALLBACK_DATA = REPO.parent / "shared" / "data" / "perf"
FILES = ("cpython-3.11.7/_pydecimal.py", "cpython-3.11.7/typing.py", "cpython-3.11.7/argparse.py")
OURS = [sys.executable, "-m", "metagpt_lsp.server", "--stdio", "--log-level", "warning"]
BARE = [sys.executable, str(REPO / "benchmarks" / "bare_server.py")]
TARGET_INITIALIZE_MS, TARGET_RSS_MB = 300.0, 250.0
WAIT_S = 60.0


def data_dir(given: str | None) -> Path:
    for candidate in ([Path(given)] if given else [DEFAULT_DATA, FALLBACK_DATA]):
        if all((candidate / name).is_file() for name in FILES):
            return candidate
    raise SystemExit(f"no perf data under {given or f'{DEFAULT_DATA} or {FALLBACK_DATA}'} (want {', '.join(FILES)})")


def bytecode_cached_environment() -> dict[str, str]:
    """The environment for the servers, with Python's bytecode cache on as an installed package has it.

    ``PYTHONDONTWRITEBYTECODE`` (set in some sandboxes) would make every start compile our modules from source;
    a private cache folder keeps the working tree clean. The first start, untimed, fills it.
    """
    environment = dict(os.environ)
    if environment.pop("PYTHONDONTWRITEBYTECODE", None):
        environment["PYTHONPYCACHEPREFIX"] = str(REPO / "benchmarks" / ".cache" / "pycache")
    return environment


async def cold_initialize_ms(command: list[str]) -> float:
    client = await StdioClient.start(command, env=bytecode_cached_environment())
    try:
        _response, received_at = await asyncio.wait_for(client.initialize(), WAIT_S)
        return (received_at - client.started_at) * 1000
    finally:
        await client.close()


async def resident_mb(command: list[str], texts: dict[str, str], copies: int, distinct: bool = False
                      ) -> tuple[float, float]:
    """RSS in MB after ``initialize``, and after every text was opened ``copies`` times and diagnosed.

    With ``distinct`` each copy starts with its own comment line, so no two documents have the same text."""
    client = await StdioClient.start(command)
    try:
        await asyncio.wait_for(client.initialize(), WAIT_S)
        process = psutil.Process(client.pid)
        idle = process.memory_info().rss / 2**20
        pending = []
        for copy in range(copies):
            for name, text in texts.items():
                uri = f"file:///copies/{copy}/{name}"
                pending.append(client.published(uri, 1))
                client.notify("textDocument/didOpen", {"textDocument": {
                    "uri": uri, "languageId": "python", "version": 1,
                    "text": f"# copy {copy}\n{text}" if distinct else text}})
        await asyncio.wait_for(asyncio.gather(*pending), WAIT_S * 5)
        return idle, process.memory_info().rss / 2**20
    finally:
        await client.close()


async def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    options.add_argument("data_dir", nargs="?", help="folder holding cpython-3.11.7/ (see the module docstring)")
    options.add_argument("--starts", type=int, default=7, help="cold starts to take the median of (default 7)")
    options.add_argument("--copies", type=int, default=50, help="times each perf file is opened (default 50)")
    args = options.parse_args()
    folder = data_dir(args.data_dir)
    texts = {Path(name).name: (folder / name).read_text(encoding="utf-8") for name in FILES}
    print(f"start-up and memory; load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs")

    servers = {"metagpt-lsp": OURS, "bare pygls": BARE}
    runs: dict[str, list[float]] = {name: [] for name in servers}
    for command in servers.values():
        await cold_initialize_ms(command)  # fills the bytecode cache; not counted
    for _ in range(args.starts):  # alternate the two so that both see the same machine load
        for name, command in servers.items():
            runs[name].append(await cold_initialize_ms(command))
    timings = {name: statistics.median(times) for name, times in runs.items()}
    for name, times in runs.items():
        print(f"  initialize round trip, cold start  {name:<12} median {timings[name]:7.1f} ms"
              f"  (min {min(times):.1f}, max {max(times):.1f}, {args.starts} starts)")
    initialize_met = timings["metagpt-lsp"] <= TARGET_INITIALIZE_MS
    print(f"  target <= {TARGET_INITIALIZE_MS:.0f} ms: {'met' if initialize_met else 'MISSED'}")

    size_mb = sum(len(text.encode()) for text in texts.values()) * args.copies / 2**20
    rss = {}
    for name, command in (("metagpt-lsp", OURS), ("bare pygls", BARE)):
        idle, loaded = await resident_mb(command, texts, args.copies)
        rss[name] = loaded
        print(f"  resident memory {name:<12} {idle:7.1f} MB idle, {loaded:7.1f} MB with {len(texts) * args.copies}"
              f" documents open ({size_mb:.1f} MB of text)")
    memory_met = rss["metagpt-lsp"] <= TARGET_RSS_MB
    print(f"  target <= {TARGET_RSS_MB:.0f} MB: {'met' if memory_met else 'MISSED'}")
    idle, loaded = await resident_mb(OURS, texts, args.copies, distinct=True)
    print(f"  for comparison, every copy different (no tree to share): metagpt-lsp {loaded:7.1f} MB"
          f" — tree-sitter trees take about {(loaded - idle) * 2**20 / (size_mb * 2**20):.0f} bytes per byte of text")
    return 0 if initialize_met and memory_met else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
