"""One task on the broker: its deadline, its trace, what it has collected, and how it ends.

``Broker.open_task`` gives a ``TaskScope``; inside ``async with`` the coordinator sends the task's messages
through it. A task ends in one of three ways — its block is left (completed), ``cancel_task`` (cancelled), or its
deadline passes (a timer, no polling) — and ending it cancels every agent handler still working on it and fails
every request still waiting with a ``TaskEnded`` that carries ``partial``: the replies collected so far, so the
coordinator can end with what it has. The trace of every message stays readable after the task is gone.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, replace

from .messages import Message, MessageKind, summarize
from .ports import TaskHost, WorkerPort


class BrokerError(Exception):
    """Base of everything the broker raises on purpose."""


class UnknownTask(BrokerError, LookupError):
    """A message names a task that is not open."""


class NoRecipient(BrokerError, LookupError):
    """No subscribed agent receives this message: it would have been dropped."""


class RoundLimitExceeded(BrokerError):
    """A message would take a loop of the cooperation graph round more often than its bound allows."""


class AgentFailed(BrokerError):
    """Every agent that received a request answered with an error; ``failures`` are their ERROR replies."""

    def __init__(self, failures: tuple[Message, ...]) -> None:
        self.failures = failures
        super().__init__("; ".join(summarize(f.payload, 200) for f in failures))


class ReplyTimeout(BrokerError, TimeoutError):
    """A request got no (complete) answer within its own timeout; ``partial`` holds the replies that came."""

    def __init__(self, request: Message, timeout: float, partial: tuple[Message, ...]) -> None:
        self.request, self.partial = request, partial
        super().__init__(f"no reply to {request.kind} from {request.sender} within {timeout:g} s "
                         f"({len(partial)} partial)")


class TaskEnded(BrokerError):
    """The task ended while this was waiting; ``partial`` holds every reply the task collected so far."""

    def __init__(self, task_id: str, reason: str, partial: tuple[Message, ...]) -> None:
        self.task_id, self.reason, self.partial = task_id, reason, partial
        super().__init__(f"task {task_id} ended ({reason}) with {len(partial)} replies collected")


class TaskDeadlineExceeded(TaskEnded, TimeoutError):
    """The task's deadline passed."""


class TaskCancelled(TaskEnded):
    """The task was cancelled (by the user, a newer document version, or the broker closing)."""


def ended_with_task(outcome: BaseException | None) -> bool:
    """Whether a handler ended this way because its task ended under it (a cancellation, not a failure)."""
    return isinstance(outcome, (asyncio.CancelledError, TaskEnded))


@dataclass(slots=True)
class TraceEntry:
    """One line of a trace: a message (with the agents it went to) or a note about the task.

    Once the task is over its trace is sealed: each message keeps its ids, kind and sender, but its payload is
    replaced by a one-line ``summary``, so kept traces never hold documents or trees alive.
    """

    offset_s: float
    message: Message | None
    recipients: tuple[str, ...] = ()
    note: str = ""
    summary: str | None = None

    def seal(self) -> None:
        if self.message is not None and self.summary is None:
            self.summary = summarize(self.message.payload)
            self.message = replace(self.message, payload=None)

    def __str__(self) -> str:
        at = f"{f'+{self.offset_s * 1000:.1f}':>9} ms"
        m = self.message
        if m is None:
            return f"{at}  ! {self.note}"
        to = f" => {', '.join(self.recipients)}" if self.recipients else ""
        if m.kind.is_reply:
            to = f" (re {m.correlation_id})"
        text = summarize(m.payload) if self.summary is None else self.summary
        return f"{at}  {m.sender} -> {m.kind}{to}  [{m.id}]" + (f"  {text}" if text else "")


class TaskTrace:
    """Every message of one task in order, kept up to ``max_entries`` (the rest are counted, not kept)."""

    def __init__(self, task_id: str, started: float, max_entries: int) -> None:
        self.task_id, self.started, self.max_entries = task_id, started, max_entries
        self.entries: list[TraceEntry] = []
        self.omitted = 0
        self.ended: str | None = None
        self.duration_s: float | None = None

    def add(self, now: float, message: Message | None, recipients: tuple[str, ...] = (), note: str = "") -> None:
        if len(self.entries) < self.max_entries:
            self.entries.append(TraceEntry(now - self.started, message, recipients, note))
        else:
            self.omitted += 1

    def seal(self, now: float, reason: str) -> None:
        """The task is over: record how it ended and let go of the payloads."""
        self.ended, self.duration_s = reason, now - self.started
        for entry in self.entries:
            entry.seal()

    def messages(self) -> list[Message]:
        """The task's messages in order (once the task is over, with ``payload=None``: see ``TraceEntry``)."""
        return [e.message for e in self.entries if e.message is not None]

    def kinds(self) -> list[MessageKind]:
        return [m.kind for m in self.messages()]

    def __str__(self) -> str:
        if self.ended is None or self.duration_s is None:
            status = "open"
        else:
            status = f"ended ({self.ended}) after {self.duration_s * 1000:.1f} ms"
        lines = [f"task {self.task_id}: {status}, {len(self.messages())} messages"]
        lines += [f"  {entry}" for entry in self.entries]
        if self.omitted:
            lines.append(f"  … {self.omitted} more entries not kept (limit {self.max_entries})")
        return "\n".join(lines)


class PendingRequest:
    """A request waiting for replies: the first good one (``request``) or one from every recipient (``gather``)."""

    __slots__ = ("request", "gather", "future", "expected", "responses", "responders")

    def __init__(self, request: Message, gather: bool) -> None:
        self.request, self.gather = request, gather
        self.future: asyncio.Future = asyncio.get_running_loop().create_future()
        self.expected: int | None = None
        self.responses: list[Message] = []
        self.responders: set[str] = set()

    def add(self, reply: Message) -> None:
        self.responders.add(reply.sender)
        self.responses.append(reply)
        self._settle()

    def expect(self, count: int) -> None:
        """Set once the request went out: how many agents received it."""
        self.expected = count
        self._settle()

    def replies(self) -> tuple[Message, ...]:
        return tuple(r for r in self.responses if r.kind is MessageKind.REPLY)

    def _settle(self) -> None:
        if self.future.done():
            return
        if not self.gather and self.responses and self.responses[-1].kind is MessageKind.REPLY:
            self.future.set_result(self.responses[-1])
        elif self.expected is not None and len(self.responses) >= self.expected:
            if self.gather:
                self.future.set_result(tuple(self.responses))
            else:
                self.future.set_exception(AgentFailed(tuple(self.responses)))


class TaskScope:
    """A task that is open on the broker. Use as ``async with broker.open_task(timeout=30) as task:``.

    ``workers`` are the handlers working on the task now, ``pending`` its requests waiting for replies, ``rounds``
    how many messages each edge carried (for the graph's round bounds); the broker keeps them up to date.
    """

    def __init__(self, broker: TaskHost[TaskScope], task_id: str, deadline: float | None, sender: str,
                 trace: TaskTrace) -> None:
        self.id, self.deadline, self.sender, self.trace = task_id, deadline, sender, trace
        self.replies: list[Message] = []
        self.end_reason: str | None = None
        self.workers: set[WorkerPort] = set()
        self.pending: set[PendingRequest] = set()
        self.rounds: Counter[tuple[str, str]] = Counter()
        self.timer: asyncio.TimerHandle | None = None
        self._broker = broker
        self._idle: asyncio.Future[None] | None = None

    @property
    def ended(self) -> bool:
        return self.end_reason is not None

    @property
    def collected(self) -> tuple[Message, ...]:
        """Every successful reply of this task so far, in arrival order."""
        return tuple(self.replies)

    def remaining(self) -> float | None:
        """Seconds left before the deadline (never negative), or None without a deadline."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - asyncio.get_running_loop().time())

    def message(self, kind: MessageKind | str, payload: object = None, *, sender: str | None = None,
                cause: str | None = None) -> Message:
        """A message of this task, stamped with its deadline."""
        return Message(self.id, MessageKind(kind), sender or self.sender, payload, cause, self.deadline)

    async def publish(self, kind: MessageKind | str, payload: object = None, *, cause: str | None = None) -> int:
        return await self._broker.publish(self.message(kind, payload, cause=cause))

    async def request(self, kind: MessageKind | str, payload: object = None, *, timeout: float | None = None,
                      cause: str | None = None) -> Message:
        return await self._broker.request(self.message(kind, payload, cause=cause), timeout)

    async def gather(self, kind: MessageKind | str, payload: object = None, *, timeout: float | None = None,
                     cause: str | None = None) -> tuple[Message, ...]:
        return await self._broker.gather(self.message(kind, payload, cause=cause), timeout)

    def cancel(self, reason: str = "cancelled") -> int:
        return self._broker.cancel_task(self.id, reason)

    def error(self) -> TaskEnded:
        """A fresh exception saying how this (ended) task ended, carrying what it collected."""
        reason = self.end_reason or "ended"
        kind = TaskDeadlineExceeded if reason == "deadline" else TaskCancelled if reason != "completed" else TaskEnded
        return kind(self.id, reason, self.collected)

    def cancel_handlers(self, message_id: str | None = None, spare: Collection[str] = ()) -> int:
        """Cancel the handlers working on this task (on one message of it), except the agents in ``spare``."""
        return sum(w.cancel() for w in list(self.workers)
                   if (message_id is None or (w.message is not None and w.message.id == message_id))
                   and w.name not in spare)

    def worker_started(self, worker: WorkerPort) -> None:
        """``worker`` handles a message of this task now: cancelling the task cancels it."""
        self.workers.add(worker)

    def worker_done(self, worker: WorkerPort) -> None:
        self.workers.discard(worker)
        if self._idle is not None and not self.workers and not self._idle.done():
            self._idle.set_result(None)

    async def handlers_stopped(self) -> None:
        """Wait until no handler works on this task any more."""
        if self.workers:
            self._idle = asyncio.get_running_loop().create_future()
            await self._idle

    async def __aenter__(self) -> TaskScope:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._broker.close_task(self)
