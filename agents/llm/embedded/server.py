"""A local OpenAI-compatible model server run as our child process, started on first need and never orphaned.

The language server must not host llama.cpp in-process (a crash or out-of-memory there would take the editor's
server down), so the model runs as a child on 127.0.0.1 and the agents reach it through the same ``openai`` client
path as any other endpoint. What this module guarantees:

- **Lazy, shared start**: nothing runs until :meth:`LocalModelServer.ensure_running` is awaited; concurrent callers
  share one start. A slow preparation step (joining the weights) runs in a thread before the child is launched.
- **Health**: the start is done when ``GET /v1/models`` answers 200; if the child exits first, or the start timeout
  passes, the error carries the tail of the child's log.
- **Restart**: a child that died since last use is started again on the next call.
- **No orphan**: :meth:`stop`, an ``atexit`` hook, and — for a language server killed with SIGKILL — Linux's
  ``PR_SET_PDEATHSIG``: the kernel sends the child SIGTERM when the thread that spawned it dies. The child is spawned
  from the calling (event-loop) thread, never a short-lived worker thread, because that signal follows the thread.
  The child gets its own process group so a Ctrl-C sent to the editor's terminal does not race our orderly stop.
- **Quiet**: the child's stdin is /dev/null and its stdout/stderr go to a log file, never to our stdout, which is the
  LSP channel in stdio mode.
"""

from __future__ import annotations

import asyncio
import atexit
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ..errors import LlmUnavailable

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
LOG_TAIL_LINES = 20
LOG_TAIL_BYTES = 8192
LOG_ROTATE_BYTES = 5 * 1024 * 1024

CommandForPort = Callable[[int], Sequence[str]]


class ModelServerError(LlmUnavailable):
    """The local model server could not be started or kept alive; the message includes the tail of its log."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (the kernel's pick for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def _child_setup() -> Callable[[], None] | None:
    """A ``preexec_fn`` asking Linux to SIGTERM the child when its parent thread dies; None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved before fork: nothing is loaded in the child
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def set_parent_death_signal() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # the parent died between fork and prctl: the signal will never come
            os._exit(1)

    return set_parent_death_signal


class LocalModelServer:
    """One child model server: see the module docstring for its lifecycle.

    ``command(port)`` gives the argv to run (``sys.executable -m llama_cpp.server ...`` for the embedded model, a
    stand-in script in tests); ``prepare()`` runs once, in a thread, before the first launch.
    """

    def __init__(self, command: CommandForPort, *, log_path: Path, prepare: Callable[[], object] | None = None,
                 host: str = "127.0.0.1", start_timeout_s: float = 90.0, stop_timeout_s: float = 10.0,
                 poll_interval_s: float = 0.1) -> None:
        self._command = command
        self._prepare = prepare
        self._prepared = False
        self.log_path = log_path
        self.host = host
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.poll_interval_s = poll_interval_s
        self._process: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
        self._log_offset = 0
        self._starting: asyncio.Future[str] | None = None
        self._ready_url: str | None = None
        self._atexit_registered = False
        self.starts = 0

    @property
    def pid(self) -> int | None:
        """The running child's pid, None when there is none."""
        return self._process.pid if self.is_running() and self._process else None

    @property
    def base_url(self) -> str | None:
        """The ``/v1`` URL of the running child, None when there is none."""
        return self._ready_url if self.is_running() else None

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    async def ensure_running(self) -> str:
        """The base URL of a healthy child, starting (or restarting) one first if needed."""
        if self._starting is None or self._starting.done():
            if self.is_running() and self._ready_url is not None:
                return self._ready_url
            if self._process is not None and self._process.poll() is not None:
                log.warning("The local model server (pid %s) exited with status %s; starting it again.\n%s",
                            self._process.pid, self._process.returncode, self._log_tail())
                self._forget(self._process)
            self._starting = asyncio.ensure_future(self._start())
            self._starting.add_done_callback(lambda done: done.cancelled() or done.exception())  # no "never retrieved"
        return await asyncio.shield(self._starting)

    async def _start(self) -> str:
        if self._prepare is not None and not self._prepared:
            await asyncio.to_thread(self._prepare)
            self._prepared = True
        self._port = free_port(self.host)
        argv = list(self._command(self._port))
        self._launch(argv)
        began = time.monotonic()
        try:
            while True:
                process = self._process
                if process is None or process.poll() is not None:
                    error = ModelServerError(
                        f"The local model server exited during start (status {process and process.returncode}).\n"
                        f"{self._log_tail()}\n(full log: {self.log_path})")
                    if process is not None:
                        self._forget(process)
                    raise error
                if await self._answers_models():
                    break
                if time.monotonic() - began > self.start_timeout_s:
                    await self.stop()
                    raise ModelServerError(
                        f"The local model server did not answer within {self.start_timeout_s:.0f} s.\n"
                        f"{self._log_tail()}\n(full log: {self.log_path})")
                await asyncio.sleep(self.poll_interval_s)
        except asyncio.CancelledError:
            await self.stop()
            raise
        self.starts += 1
        self._ready_url = f"http://{self.host}:{self._port}/v1"
        log.info("Local model server ready at %s in %.1f s (pid %d)", self._ready_url, time.monotonic() - began,
                 process.pid)
        return self._ready_url

    def _launch(self, argv: list[str]) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            if self.log_path.stat().st_size > LOG_ROTATE_BYTES:  # keep one old log, not every start's since install
                os.replace(self.log_path, self.log_path.with_name(self.log_path.name + ".1"))
        except OSError:
            pass
        with open(self.log_path, "ab") as log_file:
            self._log_offset = log_file.tell()
            log_file.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(argv)}\n".encode())
            log_file.flush()
            self._process = subprocess.Popen(  # the child keeps its own copy of the log file's descriptor
                argv, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT, close_fds=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                preexec_fn=_child_setup(), process_group=0 if os.name == "posix" else None)
        if not self._atexit_registered:
            atexit.register(self.stop_now)
            self._atexit_registered = True
        log.info("Started the local model server (pid %d): %s", self._process.pid, " ".join(argv))

    async def _answers_models(self) -> bool:
        """Whether ``GET /v1/models`` answers 200 (a minimal HTTP/1.0 request: no client library needed)."""
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self._port), 2.0)
        except (TimeoutError, OSError):
            return False
        try:
            writer.write(f"GET /v1/models HTTP/1.0\r\nHost: {self.host}:{self._port}\r\n\r\n".encode())
            await writer.drain()
            status_line = await asyncio.wait_for(reader.readline(), 5.0)
            return status_line.split(b" ")[1:2] == [b"200"]
        except (TimeoutError, OSError, asyncio.IncompleteReadError):
            return False
        finally:
            writer.close()

    def _log_tail(self) -> str:
        """The last lines the child wrote since its latest start."""
        try:
            with open(self.log_path, "rb") as log_file:
                log_file.seek(0, os.SEEK_END)
                end = log_file.tell()
                log_file.seek(max(self._log_offset, end - LOG_TAIL_BYTES))
                text = log_file.read().decode("utf-8", "replace")
        except OSError:
            return "(no log)"
        lines = [line for line in text.splitlines() if line.strip()]
        return "\n".join(lines[-LOG_TAIL_LINES:]) or "(the server wrote nothing)"

    async def stop(self) -> None:
        """Stop the child (SIGTERM, then SIGKILL after ``stop_timeout_s``); a no-op when none runs. The waiting
        happens in a thread, so the event loop goes on meanwhile."""
        await asyncio.to_thread(self.stop_now)

    def stop_now(self) -> None:
        """The blocking form of :meth:`stop`, for ``atexit`` and other places with no event loop."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._forget(process)

    def _forget(self, process: subprocess.Popen[bytes]) -> None:
        if self._process is process:
            self._process = None
            self._port = None
            self._ready_url = None
        if self._atexit_registered:
            atexit.unregister(self.stop_now)
            self._atexit_registered = False
