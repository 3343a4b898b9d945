"""Work-done progress for long tasks: begin, one report per agent step, end — and the editor's cancel button.

Uses the request's own ``workDoneToken`` when the client sent one, else creates a token
(``window/workDoneProgress/create``) when the client supports server-initiated progress, else stays silent. A cancel
from the editor (``window/workDoneProgress/cancel``) cancels the asyncio task doing the work, which reaches every
LLM call behind it.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from lsprotocol import types

log = logging.getLogger(__name__)


class ProgressRegistry:
    """The tasks behind live progress tokens, so that a cancel from the editor finds its task."""

    def __init__(self) -> None:
        self._tasks: dict[Any, asyncio.Task[Any]] = {}

    def add(self, token: Any, task: asyncio.Task[Any]) -> None:
        self._tasks[token] = task

    def remove(self, token: Any) -> None:
        self._tasks.pop(token, None)

    def cancel(self, token: Any) -> bool:
        task = self._tasks.get(token)
        if task is None or task.done():
            return False
        task.cancel()
        return True

    def __len__(self) -> int:
        return len(self._tasks)


class TaskProgress:
    """``async with TaskProgress(server, "Explain and fix") as progress: progress.report("diagnosis")``."""

    def __init__(self, server: Any, title: str, token: Any = None, cancellable: bool = True) -> None:
        self._server = server
        self._title = title
        self._token = token
        self._cancellable = cancellable
        self._active = False
        self.steps: list[str] = []

    def _client_supports_progress(self) -> bool:
        window = self._server.client_capabilities.window
        return bool(window and window.work_done_progress)

    async def __aenter__(self) -> TaskProgress:
        if self._token is None and self._client_supports_progress():
            token = f"metagpt-lsp-{uuid.uuid4().hex[:12]}"
            try:
                await self._server.work_done_progress.create_async(token)
                self._token = token
            except Exception as error:  # noqa: BLE001 - no progress bar is better than no result
                log.debug("progress token refused by the client: %s", error)
        if self._token is not None:
            task = asyncio.current_task()
            if task is not None:
                self._server.progress_registry.add(self._token, task)
            self._server.work_done_progress.begin(self._token, types.WorkDoneProgressBegin(
                title=self._title, cancellable=self._cancellable, percentage=0))
            self._active = True
        return self

    def report(self, message: str, percentage: int | None = None) -> None:
        self.steps.append(message)
        if self._active:
            self._server.work_done_progress.report(
                self._token, types.WorkDoneProgressReport(message=message, percentage=percentage))

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None, _tb: Any) -> None:
        if not self._active:
            return
        if kind is None:
            message = "done"
        elif issubclass(kind, asyncio.CancelledError):
            message = "cancelled"
        else:
            message = f"failed: {error}"
        self._server.work_done_progress.end(self._token, types.WorkDoneProgressEnd(message=message))
        self._server.progress_registry.remove(self._token)
        self._server.work_done_progress.tokens.pop(self._token, None)
        self._active = False
