"""What the broker can tell about itself: queue depths, message counts per kind, handler latencies, tasks in flight.

Subscriptions keep running totals and a bounded window of recent handler latencies (for percentiles), so the
statistics cost nothing proportional to the number of messages ever handled.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from .channel import ChannelStatistics

LATENCY_WINDOW = 512


@dataclass(frozen=True)
class SubscriberStatistics:
    """One subscribed agent: its queue, what it handled, how long handling took (milliseconds)."""

    name: str
    watches: tuple[str, ...]
    queue: ChannelStatistics
    handling: int
    handled: int
    failed: int
    cancelled: int
    skipped: int
    latency_ms_mean: float
    latency_ms_p95: float
    latency_ms_max: float


@dataclass(frozen=True)
class BrokerStatistics:
    subscribers: tuple[SubscriberStatistics, ...]
    published: Mapping[str, int]
    tasks_in_flight: int
    tasks_finished: int
    requests_waiting: int
    unclaimed_replies: int

    @property
    def handling(self) -> int:
        """Handlers running right now, over all subscribers."""
        return sum(s.handling for s in self.subscribers)

    def __str__(self) -> str:
        lines = [f"tasks in flight {self.tasks_in_flight}, finished {self.tasks_finished}, "
                 f"requests waiting {self.requests_waiting}, unclaimed replies {self.unclaimed_replies}",
                 "published: " + (", ".join(f"{k} {n}" for k, n in sorted(self.published.items())) or "nothing")]
        for s in self.subscribers:
            q = s.queue
            lines.append(
                f"  {s.name}: queue {q.current_buffer_used}/{q.max_buffer_size} ({q.tasks_waiting_send} waiting to "
                f"send), handling {s.handling}, handled {s.handled}, failed {s.failed}, cancelled {s.cancelled}, "
                f"skipped {s.skipped}, latency mean {s.latency_ms_mean:.2f} p95 {s.latency_ms_p95:.2f} "
                f"max {s.latency_ms_max:.2f} ms")
        return "\n".join(lines)


class HandlerTally:
    """Running counts and latencies of one subscriber's handlers."""

    __slots__ = ("handling", "handled", "failed", "cancelled", "skipped", "total_s", "max_s", "recent")

    def __init__(self) -> None:
        self.handling = self.handled = self.failed = self.cancelled = self.skipped = 0
        self.total_s = self.max_s = 0.0
        self.recent: deque[float] = deque(maxlen=LATENCY_WINDOW)

    def finished(self, seconds: float) -> None:
        self.handled += 1
        self.total_s += seconds
        if seconds > self.max_s:
            self.max_s = seconds
        self.recent.append(seconds)

    def snapshot(self, name: str, watches: tuple[str, ...], queue: ChannelStatistics) -> SubscriberStatistics:
        recent = sorted(self.recent)
        p95 = recent[min(len(recent) - 1, int(len(recent) * 0.95))] if recent else 0.0
        mean = self.total_s / self.handled if self.handled else 0.0
        return SubscriberStatistics(name, watches, queue, self.handling, self.handled, self.failed, self.cancelled,
                                    self.skipped, mean * 1000, p95 * 1000, self.max_s * 1000)
