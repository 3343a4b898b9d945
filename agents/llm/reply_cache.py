"""Identical LLM requests are paid once: an LRU of finished replies, and one shared call for concurrent twins.

A request's key is everything that decides its answer (endpoint, model, messages, parameters). A finished reply is
kept in a bounded LRU; a request identical to one still in flight waits for that call instead of sending its own.
Cancelling one waiter never cancels the call under another: the call is cancelled (and its HTTP request aborted)
only when its last waiter goes away. Failures are not cached: the next identical request tries again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def request_key(**parts: Any) -> str:
    """A stable digest of a request's parts (dicts are key-sorted, so order of parameters does not matter)."""
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


class _Flight(Generic[T]):
    def __init__(self, task: asyncio.Task[T]) -> None:
        self.task = task
        self.waiters = 0


class ReplyCache(Generic[T]):
    """Finished replies by key (at most ``max_entries``) and the calls in flight."""

    def __init__(self, max_entries: int = 256) -> None:
        self._done: OrderedDict[str, T] = OrderedDict()
        self._flights: dict[str, _Flight[T]] = {}
        self._max_entries = max_entries

    def __len__(self) -> int:
        return len(self._done)

    def get(self, key: str) -> T | None:
        if key not in self._done:
            return None
        self._done.move_to_end(key)
        return self._done[key]

    def put(self, key: str, value: T) -> None:
        self._done[key] = value
        self._done.move_to_end(key)
        while len(self._done) > self._max_entries:
            self._done.popitem(last=False)

    def clear(self) -> int:
        """Forget every finished reply (calls in flight finish for their waiters); returns how many there were."""
        count = len(self._done)
        self._done.clear()
        return count

    def forget(self, key: str) -> None:
        """Drop a remembered reply (one that turned out to be unusable)."""
        self._done.pop(key, None)

    async def get_or_call(self, key: str, call: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """The reply for ``key`` and whether it came for free (cached, or shared with a call already in flight)."""
        cached = self.get(key)
        if cached is not None:
            return cached, True
        flight = self._flights.get(key)
        shared = flight is not None
        if flight is None:
            flight = _Flight(asyncio.ensure_future(call()))
            self._flights[key] = flight
            flight.task.add_done_callback(lambda task: self._settle(key, task))
        flight.waiters += 1
        try:
            value = await asyncio.shield(flight.task)
        except asyncio.CancelledError:
            if flight.task.cancelled() or flight.task.done():
                raise
            flight.waiters -= 1
            if flight.waiters == 0:
                flight.task.cancel()
            raise
        flight.waiters -= 1
        return value, shared

    def _settle(self, key: str, task: asyncio.Task[T]) -> None:
        if self._flights.get(key) is not None and self._flights[key].task is task:
            del self._flights[key]
        if task.cancelled():
            return
        if task.exception() is None:
            self.put(key, task.result())
