"""What the parts of the broker need from one another, as Protocols: the seams between broker, subscription and task.

A subscription's workers and a task scope call back into the broker that made them, and a task cancels the workers
that handle its messages. Each side names here only what it uses, and the broker (or the worker, or the task)
satisfies that structurally, so ``subscription`` and ``task_scope`` never import ``broker`` — not even for types —
and the import graph of the package has no cycle.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from .messages import Message


class WorkerPort(Protocol):
    """A worker as a task sees it: the agent it works for, the message it handles now, how to cancel that."""

    @property
    def name(self) -> str: ...

    @property
    def message(self) -> Message | None: ...

    def cancel(self) -> bool: ...


class TaskPort(Protocol):
    """A live task as a worker sees it: the worker registers while it handles one of the task's messages."""

    def worker_started(self, worker: WorkerPort) -> None: ...

    def worker_done(self, worker: WorkerPort) -> None: ...


TaskT = TypeVar("TaskT", bound=TaskPort)
ClosedTaskT = TypeVar("ClosedTaskT", contravariant=True)


class Publisher(Protocol):
    """Sends a message of an open task: to every agent that receives it, or as a request that waits for a reply."""

    async def publish(self, message: Message) -> int: ...

    async def request(self, message: Message, timeout: float | None = None) -> Message: ...


class ReplyPublisher(Publisher, Protocol):
    """A publisher that also hands a reply straight to the request it answers (what a handler's context needs)."""

    def deliver_reply(self, reply: Message) -> None: ...


class WorkerHost(ReplyPublisher, Protocol[TaskT]):
    """What a subscription's workers need from the broker: the live task of a message, and where outcomes go."""

    def live_task_or_none(self, task_id: str) -> TaskT | None: ...

    def handler_finished(self, agent: str, task: TaskT, message: Message, outcome: BaseException | None) -> None: ...


class TaskHost(Publisher, Protocol[ClosedTaskT]):
    """What a task scope needs from the broker that opened it."""

    async def gather(self, message: Message, timeout: float | None = None) -> tuple[Message, ...]: ...

    def cancel_task(self, task_id: str, reason: str = "cancelled") -> int: ...

    async def close_task(self, task: ClosedTaskT) -> None: ...
