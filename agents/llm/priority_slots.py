"""Request slots with two priorities: a waiting urgent request (ghost text) is let in before waiting background
work (review, fixes), and among equals the first to wait goes first.

An ``asyncio.Semaphore`` wakes waiters in arrival order only; the embedded model answers one request at a time, so
in that order a keystroke's completion would queue behind every review prompt already waiting. A running request is
never interrupted: priority decides only who goes next. Cancelling a waiter removes it; a waiter cancelled just
after it was handed a slot passes the slot on.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

URGENT, BACKGROUND = 0, 1


class PrioritySlots:
    """``count`` slots; ``async with slots:`` waits as background work, ``async with slots.urgent():`` ahead of it."""

    def __init__(self, count: int) -> None:
        self._free = max(1, count)
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    @property
    def waiting(self) -> int:
        return sum(1 for *_, future in self._waiters if not future.done())

    @asynccontextmanager
    async def acquire(self, priority: int = BACKGROUND) -> AsyncIterator[None]:
        await self._wait(priority)
        try:
            yield
        finally:
            self._release()

    def urgent(self) -> AbstractAsyncContextManager[None]:
        return self.acquire(URGENT)

    async def __aenter__(self) -> None:
        await self._wait(BACKGROUND)

    async def __aexit__(self, *exc: object) -> None:
        self._release()

    async def _wait(self, priority: int) -> None:
        if self._free > 0 and not self.waiting:
            self._free -= 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (priority, next(self._order), future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._release()  # the slot arrived as we were cancelled: hand it on
            raise

    def _release(self) -> None:
        while self._waiters:
            *_, future = heapq.heappop(self._waiters)
            if not future.done():
                future.set_result(None)
                return
        self._free += 1
