"""The server as a child process spoken to in raw bytes: for input no well-behaved client would send (invalid JSON,
params of the wrong shape, garbage between frames), and to check that stdout carries nothing but LSP frames.

``RawServer.read_message`` is strict on purpose: every header line ends in CRLF, every frame has a Content-Length,
every body is a JSON-RPC 2.0 object. Anything else on stdout fails the test that reads it. stderr (the server's log)
is read all along, so a chatty server never blocks on a full pipe, and kept in :attr:`RawServer.stderr`.

:meth:`RawServer.answers_until_barrier` is how a test checks what did *not* happen: the server reads messages in
order and answers the ones it refuses before it reads the next, so once the answer to a later, cheap request is in,
every answer to what came before it is in too.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import Callable
from typing import Any

from lsprotocol import types

from metagpt_lsp.testing.lsp_support import SERVER_COMMAND, SERVER_ENV, WAIT_S


def frame(message: Any = None, *, body: bytes | None = None) -> bytes:
    """One LSP base-protocol frame: a Content-Length header and the body (``message`` as JSON, or raw bytes)."""
    data = body if body is not None else json.dumps(message).encode("utf-8")
    return b"Content-Length: %d\r\n\r\n" % len(data) + data


class RawServer:
    """The server as a child process whose stdin takes any bytes and whose stdout is read frame by frame."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.received: list[dict[str, Any]] = []
        self.stdout_bytes = bytearray()
        self.stderr = bytearray()
        self._stderr_reader = asyncio.ensure_future(self._read_stderr())
        self._barrier_ids = itertools.count(1_000_000)

    @classmethod
    async def start(cls, *extra_args: str, env: dict[str, str] | None = None) -> RawServer:
        """Start the server; ``env`` is added to the test environment."""
        process = await asyncio.create_subprocess_exec(
            *SERVER_COMMAND, *extra_args, env={**SERVER_ENV, **(env or {})}, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        return cls(process)

    async def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        while chunk := await self.process.stderr.read(65536):
            self.stderr += chunk

    async def send(self, *chunks: bytes) -> None:
        assert self.process.stdin is not None
        for chunk in chunks:
            self.process.stdin.write(chunk)
        await self.process.stdin.drain()

    async def request(self, msg_id: int, method: str, params: Any = None) -> None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id, "method": method}
        if params is not None:
            message["params"] = params
        await self.send(frame(message))

    async def notify(self, method: str, params: Any = None) -> None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        await self.send(frame(message))

    async def read_message(self) -> dict[str, Any] | None:
        """The next frame from stdout, checked strictly: headers, a Content-Length, a JSON-RPC 2.0 object."""
        assert self.process.stdout is not None
        length = None
        while True:
            line = await self.process.stdout.readline()
            self.stdout_bytes += line
            if not line:
                return None
            assert line.endswith(b"\r\n"), f"header line not ended by CRLF: {line!r}"
            if line == b"\r\n":
                break
            name, _, value = line.decode("ascii").partition(":")
            assert name.strip() and value.strip(), f"not a header: {line!r}"
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        assert length is not None, "frame without Content-Length"
        body = await self.process.stdout.readexactly(length)
        self.stdout_bytes += body
        message = json.loads(body.decode("utf-8"))
        assert isinstance(message, dict) and message.get("jsonrpc") == "2.0", f"not JSON-RPC 2.0: {message!r}"
        self.received.append(message)
        return message

    async def until(self, matches: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """Read frames until one matches (those read on the way stay in :attr:`received`)."""

        async def read() -> dict[str, Any]:
            while True:
                message = await self.read_message()
                assert message is not None, "the server closed stdout (did it crash?)"
                if matches(message):
                    return message

        return await asyncio.wait_for(read(), WAIT_S)

    async def response(self, msg_id: Any) -> dict[str, Any]:
        return await self.until(lambda message: message.get("id") == msg_id and "method" not in message)

    async def answers_until_barrier(self) -> list[dict[str, Any]]:
        """Every answer (a message without a method) the server sends before it answers a cheap request sent now;
        the barrier's own answer is not in the list."""
        barrier = next(self._barrier_ids)
        first = len(self.received)
        await self.request(barrier, types.TEXT_DOCUMENT_DIAGNOSTIC, {"textDocument": {"uri": "file:///raw/barrier.py"}})
        await self.response(barrier)
        answers = [m for m in self.received[first:] if "method" not in m]
        assert answers[-1]["id"] == barrier and answers[-1]["result"]["kind"] == "full", answers[-1]
        return answers[:-1]

    async def first(self, matches: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The first message received so far, or from now on, that matches."""
        for message in self.received:
            if matches(message):
                return message
        return await self.until(matches)

    async def log_line(self, *words: str) -> str:
        """The first ``window/logMessage`` received so far or from now on that contains every one of ``words``."""
        logged = await self.first(lambda m: m.get("method") == types.WINDOW_LOG_MESSAGE
                                  and all(word in m["params"]["message"] for word in words))
        return logged["params"]["message"]

    def log_messages(self) -> list[str]:
        return [m["params"]["message"] for m in self.received if m.get("method") == types.WINDOW_LOG_MESSAGE]

    async def initialize(self, capabilities: dict[str, Any] | None = None) -> dict[str, Any]:
        """initialize and initialized; returns the answer to initialize once the server has handled initialized
        (from then on its log lines reach the editor as ``window/logMessage``)."""
        await self.request(1, types.INITIALIZE, {"processId": None, "rootUri": None,
                                                 "capabilities": capabilities or {}})
        answer = await self.response(1)
        await self.notify(types.INITIALIZED, {})
        await self.answers_until_barrier()
        return answer

    async def stop(self) -> int:
        """Shut the server down politely when it still listens, and return its exit status."""
        if self.process.returncode is None:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                await self.request(999_999, types.SHUTDOWN)
                await self.response(999_999)
                await self.notify(types.EXIT)
        return await self.exit_status()

    async def exit_status(self) -> int:
        """Wait for the server to exit (killing it after :data:`WAIT_S`) and return its exit status."""
        try:
            await asyncio.wait_for(self.process.wait(), WAIT_S)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stderr_reader, WAIT_S)
        assert self.process.returncode is not None
        return self.process.returncode
