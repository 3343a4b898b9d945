"""One agent's subscription: its bounded queue and the workers that run its handler, one message at a time each.

A worker takes the oldest message (FIFO), and while it awaits ``agent.handle(message, context)`` it is registered
under the message's task. Cancelling the task cancels that worker's asyncio Task, so the ``CancelledError`` lands
wherever the handler waits (an HTTP call to the LLM, a request to another agent). The worker then takes back
(``uncancel``) the cancellation it asked for and goes on with the next message; a cancellation it did not ask for
(the broker closing) ends it. The subscription tallies how each handler ended and reports it back to the broker,
which turns failures into ERROR replies. It reaches the broker only through the ports of ``ports.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from time import perf_counter
from typing import Protocol

from .channel import BoundedChannel, ChannelClosed
from .messages import Message, MessageKind
from .ports import ReplyPublisher, TaskT, WorkerHost
from .statistics import HandlerTally, SubscriberStatistics
from .task_scope import ended_with_task


class Agent(Protocol):
    """A member of the team: reacts to the kinds it ``watches`` and publishes through the context it is given.

    An agent may set ``concurrency`` (an int, default 1): how many of its handlers may run at once.
    """

    @property
    def name(self) -> str: ...

    @property
    def watches(self) -> Sequence[MessageKind]: ...

    async def handle(self, message: Message, context: HandlerContext) -> None: ...


class HandlerContext:
    """What a handler may do about the message it handles: publish follow-ups, reply, ask, check its time."""

    __slots__ = ("broker", "agent", "message")

    def __init__(self, broker: ReplyPublisher, agent: str, message: Message) -> None:
        self.broker, self.agent, self.message = broker, agent, message

    @property
    def task_id(self) -> str:
        return self.message.task_id

    def remaining(self) -> float | None:
        """Seconds until the task's deadline, None without one (use it as the LLM call's timeout)."""
        d = self.message.deadline
        return None if d is None else max(0.0, d - asyncio.get_running_loop().time())

    def reply(self, payload: object = None) -> None:
        """Answer the message (replies never wait: they go straight to the requester)."""
        self.broker.deliver_reply(self.message.reply(self.agent, payload))

    def follow_up(self, kind: MessageKind | str, payload: object = None) -> Message:
        """A message of the same task from this agent, caused by the one being handled."""
        return self.message.follow_up(kind, self.agent, payload)

    async def publish(self, kind: MessageKind | str, payload: object = None) -> int:
        return await self.broker.publish(self.follow_up(kind, payload))

    async def request(self, kind: MessageKind | str, payload: object = None, timeout: float | None = None) -> Message:
        return await self.broker.request(self.follow_up(kind, payload), timeout)


class Worker:
    """One of a subscription's workers; ``message`` is what it handles now (None when idle)."""

    __slots__ = ("name", "task", "message", "cancel_requested")

    def __init__(self, name: str) -> None:
        self.name = name
        self.task: asyncio.Task[None] | None = None
        self.message: Message | None = None
        self.cancel_requested = False

    def cancel(self) -> bool:
        """Cancel the handler this worker runs; False when it runs none or the cancel is already on its way."""
        if self.task is None or self.message is None or self.cancel_requested or self.task is asyncio.current_task():
            return False
        self.cancel_requested = True
        self.task.cancel()
        return True


class Subscription:
    """An agent, the kinds it watches, its bounded queue, its workers and their tally."""

    def __init__(self, agent: Agent, queue_size: int) -> None:
        self.agent, self.name = agent, agent.name
        self.watches = tuple(MessageKind(k) for k in agent.watches)
        self.channel: BoundedChannel[Message] = BoundedChannel(queue_size)
        self.tasks: list[asyncio.Task[None]] = []
        self.tally = HandlerTally()

    def start(self, broker: WorkerHost[TaskT], concurrency: int) -> None:
        for n in range(concurrency):
            self.tasks.append(asyncio.create_task(self._work(broker, Worker(self.name)), name=f"{self.name}#{n}"))

    async def stop(self) -> int:
        """Close the queue and end the workers; returns how many messages were left undelivered."""
        left = self.channel.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        return left

    def statistics(self) -> SubscriberStatistics:
        return self.tally.snapshot(self.name, tuple(map(str, self.watches)), self.channel.statistics())

    async def _work(self, broker: WorkerHost[TaskT], worker: Worker) -> None:
        me = worker.task = asyncio.current_task()
        if me is None:
            raise RuntimeError(f"a worker of {self.name} must run in an asyncio task")
        tally, handle, receive = self.tally, self.agent.handle, self.channel.receive
        while True:
            try:
                message = await receive()
            except ChannelClosed:
                return
            task = broker.live_task_or_none(message.task_id)
            if task is None:
                tally.skipped += 1
                continue
            worker.message = message
            task.worker_started(worker)
            tally.handling += 1
            started = perf_counter()
            outcome: BaseException | None = None
            try:
                await handle(message, HandlerContext(broker, self.name, message))
            except asyncio.CancelledError as exc:
                if not worker.cancel_requested or me.uncancel() > 0:
                    raise  # not ours to take back: the broker is closing
                worker.cancel_requested = False
                outcome = exc
            except Exception as exc:  # noqa: BLE001 - a failing agent must not take the broker down
                outcome = exc
            finally:
                tally.handling -= 1
                worker.message = None
                task.worker_done(worker)
            if worker.cancel_requested:  # the handler swallowed its cancellation: it is over all the same
                worker.cancel_requested = False
                me.uncancel()
            tally.finished(perf_counter() - started)
            if ended_with_task(outcome):
                tally.cancelled += 1
            elif outcome is not None:
                tally.failed += 1
            broker.handler_finished(self.name, task, message, outcome)
            del message, task, outcome  # an idle worker holds no payload alive
