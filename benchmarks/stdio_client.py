"""A lean LSP client over a child process' stdio, for benchmarks: its own framing, plain JSON, no type conversion.

The benchmarks compare metagpt-lsp with a bare pygls server, so the client must add as little as possible to what it
measures. Each notification is timestamped the moment its frame has been read, before anything else looks at it;
``expect`` returns a future for the first notification that matches, resolved with ``(params, received_at)``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable
from typing import Any

Matcher = Callable[[dict[str, Any]], bool]


def frame(message: dict[str, Any]) -> bytes:
    body = json.dumps(message, separators=(",", ":")).encode("utf-8")
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


class StdioClient:
    """``client = await StdioClient.start([python, server.py])``; ``await client.initialize()``; ``client.notify``."""

    def __init__(self, process: asyncio.subprocess.Process, started_at: float) -> None:
        self.process = process
        self.started_at = started_at
        self._ids = itertools.count(1)
        self._responses: dict[int, asyncio.Future] = {}
        self._waiters: dict[str, list[tuple[Matcher, asyncio.Future]]] = {}
        self._reader = asyncio.create_task(self._read_forever())

    @classmethod
    async def start(cls, command: list[str], env: dict[str, str] | None = None) -> StdioClient:
        started_at = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL, limit=2**24, env=env)
        return cls(process, started_at)

    @property
    def pid(self) -> int:
        return self.process.pid

    async def _read_forever(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        while True:
            length = 0
            while (line := await stdout.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if not line:
                return
            message = json.loads(await stdout.readexactly(length))
            received_at = time.perf_counter()
            if "method" not in message:
                future = self._responses.pop(message.get("id"), None)
                if future is not None and not future.done():
                    future.set_result((message, received_at))
            elif "id" in message:  # a request from the server (e.g. workspace/configuration): answer null
                self._write({"jsonrpc": "2.0", "id": message["id"], "result": None})
            else:
                self._dispatch(message["method"], message.get("params") or {}, received_at)

    def _dispatch(self, method: str, params: dict[str, Any], received_at: float) -> None:
        waiters = self._waiters.get(method)
        if not waiters:
            return
        for entry in list(waiters):
            matches, future = entry
            if not future.done() and matches(params):
                future.set_result((params, received_at))
                waiters.remove(entry)

    def _write(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(frame(message))

    def expect(self, method: str, matches: Matcher) -> asyncio.Future:
        """A future for the next ``method`` notification whose params match; register it before sending the cause."""
        future = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(method, []).append((matches, future))
        return future

    def published(self, uri: str, version: int | None) -> asyncio.Future:
        return self.expect("textDocument/publishDiagnostics",
                           lambda params: params.get("uri") == uri and params.get("version") == version)

    async def request(self, method: str, params: Any = None) -> tuple[dict[str, Any], float]:
        """Send a request; the response message and when it arrived."""
        msg_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._responses[msg_id] = future
        self._write({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        return await future

    def notify(self, method: str, params: Any) -> None:
        self._write({"jsonrpc": "2.0", "method": method, "params": params})

    async def initialize(self, capabilities: dict[str, Any] | None = None) -> tuple[dict[str, Any], float]:
        response = await self.request("initialize", {"processId": None, "rootUri": None,
                                                     "capabilities": capabilities or PUSH_CLIENT})
        self.notify("initialized", {})
        return response

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self.request("shutdown"), 10)
            self.notify("exit", None)
            await asyncio.wait_for(self.process.wait(), 10)
        except (TimeoutError, ConnectionError):
            self.process.kill()
            await self.process.wait()
        self._reader.cancel()


PUSH_CLIENT: dict[str, Any] = {
    "textDocument": {"publishDiagnostics": {"versionSupport": True},
                     "synchronization": {"dynamicRegistration": False}},
    "general": {"positionEncodings": ["utf-16"]},
}
"""A push-diagnostics editor that speaks UTF-16 and declares nothing else (no workspace/configuration round trip)."""
