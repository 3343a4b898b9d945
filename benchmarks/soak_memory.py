"""Soak: tens of thousands of edits over stdio to the real server, and its resident memory before and after.

Every didOpen/didChange/didClose once left a finished future (~2 KB) in pygls' request table, so memory grew with
every keystroke without bound (45.6 -> 76.2 MB after 15,000 changes). This types into one document (a character
in, a character out, so its text keeps its size; every change answered by its diagnostics before the next batch)
and opens and closes a second document now and then, and prints the server's RSS (psutil) after a warm-up and at
the end. Flat within noise means the ratio stays under ``--max-ratio`` (default 1.10); the exit status is 1 if not.

    python benchmarks/soak_memory.py [--edits 30000] [--batch 500] [--max-ratio 1.10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time

import psutil
from stdio_client import StdioClient

SERVER = [sys.executable, "-m", "metagpt_lsp.server", "--stdio", "--log-level", "warning"]
ENV = {**os.environ, "OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "METAGPT_LSP_REVIEW_CACHE": ":memory:"}
TEXT = "def total(values):\n    result = 0\n    for value in values:\n        result += value\n    return result\n"
URI, OTHER = "file:///soak/typing.py", "file:///soak/opened_and_closed.py"
WAIT_S = 120.0


def mib(process: psutil.Process) -> float:
    return process.memory_info().rss / (1024 * 1024)


class Typist:
    """Types into line 2 of :data:`TEXT`: odd versions add an ``x`` at its end, even versions take it away."""

    def __init__(self, client: StdioClient) -> None:
        self.client = client
        self.version = 1

    def change(self) -> None:
        self.version += 1
        end = len("    result = 0")
        if self.version % 2:
            change = {"range": {"start": {"line": 1, "character": end + 1}, "end": {"line": 1, "character": end + 2}},
                      "text": ""}
        else:
            change = {"range": {"start": {"line": 1, "character": end}, "end": {"line": 1, "character": end}},
                      "text": "x"}
        self.client.notify("textDocument/didChange", {"textDocument": {"uri": URI, "version": self.version},
                                                      "contentChanges": [change]})

    async def type(self, count: int, batch: int) -> None:
        """``count`` changes; after each ``batch`` of them, wait for the diagnostics of the last one."""
        for start in range(0, count, batch):
            size = min(batch, count - start)
            published = self.client.published(URI, self.version + size)
            for _ in range(size):
                self.change()
            if (self.version // batch) % 4 == 0:  # now and then a document opened and closed as well
                self.client.notify("textDocument/didOpen", {"textDocument": {
                    "uri": OTHER, "languageId": "python", "version": 1, "text": TEXT}})
                self.client.notify("textDocument/didClose", {"textDocument": {"uri": OTHER}})
            await asyncio.wait_for(published, WAIT_S)


async def soak(edits: int, batch: int, warm_up: int) -> tuple[float, float, float]:
    client = await StdioClient.start(SERVER, env=ENV)
    try:
        await client.initialize()
        opened = client.published(URI, 1)
        client.notify("textDocument/didOpen", {"textDocument": {"uri": URI, "languageId": "python", "version": 1,
                                                                "text": TEXT}})
        await asyncio.wait_for(opened, WAIT_S)
        server = psutil.Process(client.pid)
        typist = Typist(client)
        await typist.type(warm_up, batch)
        before = mib(server)
        started = time.perf_counter()
        print(f"after {warm_up:,} warm-up edits: RSS {before:.1f} MiB", flush=True)
        for done in range(0, edits, edits // 5):
            await typist.type(min(edits // 5, edits - done), batch)
            print(f"  {done + edits // 5:>7,} edits: RSS {mib(server):.1f} MiB", flush=True)
        after = mib(server)
        return before, after, time.perf_counter() - started
    finally:
        await client.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=30_000, help="didChange notifications measured (default 30000)")
    parser.add_argument("--batch", type=int, default=500, help="changes sent before waiting for diagnostics")
    parser.add_argument("--warm-up", type=int, default=2_000, help="edits before the first measurement")
    parser.add_argument("--max-ratio", type=float, default=1.10, help="largest after/before RSS ratio that passes")
    args = parser.parse_args()
    before, after, seconds = asyncio.run(soak(args.edits, args.batch, args.warm_up))
    ratio = after / before
    print(f"RSS before {before:.1f} MiB, after {after:.1f} MiB, ratio {ratio:.3f} "
          f"({args.edits:,} edits in {seconds:.1f} s, {(after - before) * 1024 * 1024 / args.edits:.0f} bytes/edit)")
    if ratio > args.max_ratio:
        print(f"memory grew more than {args.max_ratio:.2f}x: something is kept per edit", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
