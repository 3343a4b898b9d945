"""A bounded, closeable, FIFO channel for one subscriber of the broker, with backpressure and statistics.

Modelled on anyio's memory object streams: ``send`` waits while the buffer is full (it never drops and never grows
past ``max_size``), ``receive`` waits while it is empty, items come out in the order they went in, waiting senders
are served first come first served, and ``statistics()`` tells how full the buffer is and who is waiting. Unlike
``asyncio.Queue`` (before 3.13) it can be closed: waiting senders and receivers then get ``ChannelClosed``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


class ChannelClosed(Exception):
    """The channel was closed: nothing more can be sent or received."""


class WouldBlock(Exception):
    """``send_nowait`` on a full channel or ``receive_nowait`` on an empty one."""


@dataclass(frozen=True)
class ChannelStatistics:
    """What a channel holds and who waits on it (the names follow anyio's ``MemoryObjectStreamStatistics``)."""

    current_buffer_used: int
    max_buffer_size: int
    tasks_waiting_send: int
    tasks_waiting_receive: int
    open: bool


class BoundedChannel(Generic[T]):
    """A FIFO buffer of at most ``max_size`` items; a full buffer makes senders wait."""

    __slots__ = ("_buffer", "_max_size", "_senders", "_receivers", "_closed")

    def __init__(self, max_size: int) -> None:
        if max_size < 1:
            raise ValueError(f"a channel needs room for at least one item, got max_size={max_size}")
        self._buffer: deque[T] = deque()
        self._max_size = max_size
        self._senders: deque[tuple[asyncio.Future[None], T]] = deque()
        self._receivers: deque[asyncio.Future[T]] = deque()
        self._closed = False

    def send_nowait(self, item: T) -> None:
        """Hand ``item`` to a waiting receiver or buffer it; raise ``WouldBlock`` when the buffer is full."""
        if self._closed:
            raise ChannelClosed("the channel is closed")
        while self._receivers:
            receiver = self._receivers.popleft()
            if not receiver.done():
                receiver.set_result(item)
                return
        if len(self._buffer) >= self._max_size or self._senders:
            raise WouldBlock
        self._buffer.append(item)

    async def send(self, item: T) -> None:
        """Send ``item``, waiting (backpressure) while the buffer is full."""
        try:
            self.send_nowait(item)
            return
        except WouldBlock:
            pass
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (waiter, item)
        self._senders.append(entry)
        try:
            await waiter
        except BaseException:
            if not waiter.done() or waiter.cancelled():
                try:
                    self._senders.remove(entry)
                except ValueError:
                    pass
            raise

    def receive_nowait(self) -> T:
        """Take the oldest item; raise ``WouldBlock`` when there is none."""
        if self._buffer:
            item = self._buffer.popleft()
            self._admit_one_sender()
            return item
        if self._closed:
            raise ChannelClosed("the channel is closed")
        raise WouldBlock

    async def receive(self) -> T:
        """Take the oldest item, waiting while the channel is empty."""
        try:
            return self.receive_nowait()
        except WouldBlock:
            pass
        waiter: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._receivers.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._buffer.appendleft(waiter.result())  # handed over just before the cancel: keep it
            elif not waiter.done():
                try:
                    self._receivers.remove(waiter)
                except ValueError:
                    pass
            raise

    def _admit_one_sender(self) -> None:
        while self._senders and len(self._buffer) < self._max_size:
            waiter, item = self._senders.popleft()
            if waiter.done():
                continue
            self._buffer.append(item)
            waiter.set_result(None)

    def purge(self, unwanted: Callable[[T], bool], error: Callable[[], BaseException]) -> int:
        """Drop the buffered items that are ``unwanted`` and fail their waiting senders with ``error()``.

        Used when a task ends: its queued messages would only be skipped, so they give their room back now.
        Returns how many items were dropped or refused.
        """
        kept = [item for item in self._buffer if not unwanted(item)]
        dropped = len(self._buffer) - len(kept)
        if dropped:
            self._buffer = deque(kept)
        for entry in list(self._senders):
            waiter, item = entry
            if not waiter.done() and unwanted(item):
                self._senders.remove(entry)
                waiter.set_exception(error())
                dropped += 1
        self._admit_one_sender()
        return dropped

    def close(self) -> int:
        """Close the channel; waiting senders and receivers get ``ChannelClosed``. Returns the items left behind."""
        if self._closed:
            return 0
        self._closed = True
        left = len(self._buffer) + sum(1 for waiter, _ in self._senders if not waiter.done())
        self._buffer.clear()
        for waiter, _ in self._senders:
            if not waiter.done():
                waiter.set_exception(ChannelClosed("the channel was closed while sending"))
        for receiver in self._receivers:
            if not receiver.done():
                receiver.set_exception(ChannelClosed("the channel was closed"))
        self._senders.clear()
        self._receivers.clear()
        return left

    @property
    def closed(self) -> bool:
        return self._closed

    def statistics(self) -> ChannelStatistics:
        return ChannelStatistics(
            current_buffer_used=len(self._buffer),
            max_buffer_size=self._max_size,
            tasks_waiting_send=sum(1 for waiter, _ in self._senders if not waiter.done()),
            tasks_waiting_receive=sum(1 for waiter in self._receivers if not waiter.done()),
            open=not self._closed,
        )
