"""Commands that answer at once and do their work afterwards: fix, generate and review for clients without resolve.

An editor blocks on its requests — eglot waits 10 s with Emacs frozen, then gives up — so the team's work must not
run inside one. ``workspace/executeCommand`` for ``metagpt.explainAndFix``, ``metagpt.generate`` and
``metagpt.review`` answers as soon as its arguments are checked; the work goes on as a task here, reports
``$/progress`` where the client supports it, and a fix or a generation ends with ``workspace/applyEdit``.

The work stops, and no edit follows, when the user cancels it: ``$/cancelRequest`` naming the command's request
(even after its answer was sent), the progress bar's cancel button, or a newer version of the document. Shutdown
cancels whatever is still running.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)


class CommandWork:
    """The background tasks of commands that already answered, by the id of the request that started each."""

    def __init__(self) -> None:
        self._by_request: dict[Any, asyncio.Task[Any]] = {}
        self._running: set[asyncio.Task[Any]] = set()

    def start(self, request_id: Any, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``work`` after the command's answer; ``request_id`` lets a later ``$/cancelRequest`` find it."""
        task = asyncio.ensure_future(work)
        self._running.add(task)
        if request_id is not None:
            self._by_request[request_id] = task
        task.add_done_callback(functools.partial(self._forget, request_id))
        return task

    def _forget(self, request_id: Any, task: asyncio.Task[Any]) -> None:
        self._running.discard(task)
        if self._by_request.get(request_id) is task:
            del self._by_request[request_id]
        if not task.cancelled() and task.exception() is not None:
            error = task.exception()
            log.error("a command's work failed: %s", error)
            log.debug("the command's work failed", exc_info=error)

    def cancel_request(self, request_id: Any) -> bool:
        """Cancel the work the request ``request_id`` started; False when there is none (or it ended)."""
        task = self._by_request.pop(request_id, None)
        if task is None or task.done():
            return False
        task.cancel()
        log.info("cancelled the work of request %s", request_id)
        return True

    def __len__(self) -> int:
        return sum(1 for task in self._running if not task.done())

    async def close(self) -> None:
        """Cancel every task and wait until each has ended (shutdown)."""
        running = [task for task in self._running if not task.done()]
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
