"""The team's work in flight per document, so a newer version (or a newer request) cancels what it makes stale.

A review, a fix or a completion is computed for one version. When the document changes, its answer could only be
dropped, so the work is cancelled at once — the LLM calls behind it included — instead of being paid for.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Coroutine
from typing import Any


class DocumentTasks:
    """asyncio tasks keyed by (uri, kind); starting a kind again for a uri cancels the previous one."""

    def __init__(self) -> None:
        self._tasks: dict[tuple[str, str], asyncio.Task[Any]] = {}

    def start(self, uri: str, kind: str, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``work`` as the one ``kind`` task of ``uri`` (the previous one, if running, is cancelled)."""
        self.cancel(uri, kind)
        task = asyncio.ensure_future(work)
        self._tasks[(uri, kind)] = task
        task.add_done_callback(functools.partial(self._forget, (uri, kind)))
        return task

    def track(self, uri: str, kind: str) -> None:
        """Register the current task (e.g. a request handler) as ``uri``'s ``kind`` work."""
        task = asyncio.current_task()
        if task is not None:
            self.cancel(uri, kind)
            self._tasks[(uri, kind)] = task
            task.add_done_callback(functools.partial(self._forget, (uri, kind)))

    def release(self, uri: str, kind: str) -> None:
        """Stop counting the current task as ``uri``'s ``kind`` work: its result is final, a newer version no longer
        makes it moot (e.g. while the editor applies the edit it produced, which changes the document)."""
        if self._tasks.get((uri, kind)) is asyncio.current_task():
            del self._tasks[(uri, kind)]

    def _forget(self, key: tuple[str, str], task: asyncio.Task[Any]) -> None:
        if self._tasks.get(key) is task:
            del self._tasks[key]

    def cancel(self, uri: str, kind: str | None = None) -> int:
        """Cancel ``uri``'s work of ``kind`` (of every kind when None); returns how many tasks were cancelled."""
        cancelled = 0
        for key in [key for key in self._tasks if key[0] == uri and (kind is None or key[1] == kind)]:
            task = self._tasks.pop(key)
            if task is not asyncio.current_task() and not task.done():
                task.cancel()
                cancelled += 1
        return cancelled

    def in_flight(self) -> list[tuple[str, str]]:
        return [key for key, task in self._tasks.items() if not task.done()]
