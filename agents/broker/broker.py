"""The in-process message broker of the agent team (asyncio): subscriptions, tasks, request/reply, cancellation.

An agent subscribes to the message kinds it watches and gets its own bounded ``BoundedChannel``: publishing to a
full one waits (backpressure), so nothing grows without bound and nothing is dropped — a message nobody would
receive raises ``NoRecipient``. Each subscription runs ``concurrency`` workers that take messages in FIFO order and
await ``agent.handle(message, context)``; while a worker handles a message it is registered under the message's
task, so ``cancel_task`` (or the task's deadline) cancels exactly the handlers working on that task, wherever they
wait — an HTTP call to the LLM included. A worker survives the cancellation of its handler and takes the next
message. A handler that raises does not kill anything: the error becomes an ``ERROR`` reply to the requester and
a log record. With a router (the cooperation graph) messages go only where the graph's edges say, and no loop of
the graph goes round more often than its bound. Every message lands in its task's trace.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, OrderedDict
from collections.abc import Sequence
from typing import Protocol

from .messages import Message, MessageKind, new_id
from .statistics import BrokerStatistics
from .subscription import Agent, HandlerContext, Subscription
from .task_scope import (
    NoRecipient,
    PendingRequest,
    ReplyTimeout,
    RoundLimitExceeded,
    TaskEnded,
    TaskScope,
    TaskTrace,
    UnknownTask,
    ended_with_task,
)

__all__ = ["Agent", "Broker", "HandlerContext", "Router"]

log = logging.getLogger(__name__)


class Router(Protocol):
    """Who receives what (the cooperation graph is one)."""

    @property
    def agents(self) -> Sequence[str]: ...

    def route(self, sender: str, kind: MessageKind) -> Sequence[str]: ...

    def round_limit(self, source: str, target: str) -> int | None: ...


class Broker:
    """Typed, bounded, in-process pub/sub with tasks. Use as ``async with Broker(router=graph) as broker:``."""

    def __init__(self, router: Router | None = None, *, queue_size: int = 64, keep_traces: int = 100,
                 max_trace_entries: int = 1000, cancel_grace_s: float = 1.0) -> None:
        self.router, self.queue_size = router, queue_size
        self.keep_traces, self.max_trace_entries, self.cancel_grace_s = keep_traces, max_trace_entries, cancel_grace_s
        self._subs: dict[str, Subscription] = {}
        self._recipients: dict[tuple[str, MessageKind], tuple[Subscription, ...]] = {}
        self._tasks: dict[str, TaskScope] = {}
        self._traces: OrderedDict[str, TaskTrace] = OrderedDict()
        self._pending: dict[str, PendingRequest] = {}
        self._published: Counter[str] = Counter()
        self._finished = self._unclaimed = 0
        self._closed = False

    async def __aenter__(self) -> Broker:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def subscribe(self, agent: Agent, *, queue_size: int | None = None, concurrency: int | None = None) -> None:
        """Deliver the kinds ``agent.watches`` to ``agent``, in a queue of ``queue_size``, ``concurrency`` at once."""
        if self._closed:
            raise RuntimeError("the broker is closed")
        if agent.name in self._subs:
            raise ValueError(f"an agent named {agent.name!r} is already subscribed")
        if self.router is not None and agent.name not in self.router.agents:
            raise ValueError(f"agent {agent.name!r} is not in the cooperation graph "
                             f"(agents: {', '.join(self.router.agents)})")
        workers = concurrency or getattr(agent, "concurrency", 1)
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"agent {agent.name!r}: concurrency must be a whole number >= 1, got {workers!r}")
        sub = self._subs[agent.name] = Subscription(agent, queue_size or self.queue_size)
        sub.start(self, workers)
        self._recipients.clear()

    def _route(self, sender: str, kind: MessageKind) -> tuple[Subscription, ...]:
        found = self._recipients.get((sender, kind))
        if found is None:
            watchers = [s for s in self._subs.values() if kind in s.watches and s.name != sender]
            if self.router is not None:
                routed = self.router.route(sender, kind)
                watchers = [s for name in routed for s in watchers if s.name == name]
            found = self._recipients[(sender, kind)] = tuple(watchers)
        return found

    # -- tasks -----------------------------------------------------------------------------------------------

    def open_task(self, timeout: float | None = None, *, deadline: float | None = None, task_id: str | None = None,
                  sender: str = "coordinator") -> TaskScope:
        """Open a task that ends ``timeout`` seconds from now (or at ``deadline`` on the loop's clock)."""
        if self._closed:
            raise RuntimeError("the broker is closed")
        loop = asyncio.get_running_loop()
        if deadline is None and timeout is not None:
            deadline = loop.time() + timeout
        task_id = task_id or new_id("t")
        if task_id in self._tasks:
            raise ValueError(f"task {task_id} is already open")
        task = TaskScope(self, task_id, deadline, sender, TaskTrace(task_id, loop.time(), self.max_trace_entries))
        if deadline is not None:
            task.timer = loop.call_at(deadline, self._end_task, task, "deadline")
        self._tasks[task_id] = task
        return task

    def live_task_or_none(self, task_id: str) -> TaskScope | None:
        task = self._tasks.get(task_id)
        return None if task is None or task.ended else task

    def cancel_task(self, task_id: str, reason: str = "cancelled") -> int:
        """End the task: cancel every handler working on it, fail its waiting requests. Returns handlers cancelled.

        A handler that cancels its own task is not interrupted: it ends when it returns (what it publishes fails).
        """
        task = self._tasks.get(task_id)
        return 0 if task is None else self._end_task(task, reason)

    def _end_task(self, task: TaskScope, reason: str) -> int:
        if task.ended:
            return 0
        task.end_reason = reason
        if task.timer is not None:
            task.timer.cancel()
        for pending in task.pending:
            if not pending.future.done():
                pending.future.set_exception(task.error())
        unwanted = lambda m: m.task_id == task.id  # noqa: E731
        dropped = sum(sub.channel.purge(unwanted, task.error) for sub in self._subs.values())
        cancelled = task.cancel_handlers()
        note = f"task ended ({reason})"
        if cancelled or dropped:
            note += f": {cancelled} handlers cancelled, {dropped} queued messages dropped"
        task.trace.add(asyncio.get_running_loop().time(), None, note=note)
        return cancelled

    async def close_task(self, task: TaskScope) -> None:
        """End the task and wait (a grace period at most) until its cancelled handlers have let go of it."""
        self._end_task(task, "completed")
        try:
            async with asyncio.timeout(self.cancel_grace_s):
                await task.handlers_stopped()
        except TimeoutError:
            names = ", ".join(sorted({w.name for w in task.workers}))
            log.warning("task %s: %s still running %.1f s after cancellation", task.id, names, self.cancel_grace_s)
        finally:
            self._tasks.pop(task.id, None)
            task.trace.seal(asyncio.get_running_loop().time(), task.end_reason or "completed")
            self._traces[task.id] = task.trace
            while len(self._traces) > self.keep_traces:
                self._traces.popitem(last=False)
            self._finished += 1

    def trace(self, task_id: str) -> TaskTrace:
        """The trace of an open task or of one of the last ``keep_traces`` finished ones."""
        task = self._tasks.get(task_id)
        if task is not None:
            return task.trace
        try:
            return self._traces[task_id]
        except KeyError:
            raise UnknownTask(
                f"no trace of task {task_id} (traces are kept for the last {self.keep_traces} tasks)") from None

    # -- publishing and asking -------------------------------------------------------------------------------

    def _live_task(self, message: Message) -> TaskScope:
        task = self._tasks.get(message.task_id)
        if task is None:
            raise UnknownTask(f"task {message.task_id} is not open (open it with broker.open_task())")
        if task.ended:
            raise task.error()
        return task

    async def publish(self, message: Message) -> int:
        """Deliver ``message`` to every agent that receives it, waiting on full queues. Returns how many."""
        if message.kind.is_reply:
            self.deliver_reply(message)
            return 1
        task = self._live_task(message)
        subs = self._route(message.sender, message.kind)
        if not subs:
            raise NoRecipient(self._no_recipient(message))
        if self.router is not None:
            self._count_rounds(self.router, task, message, subs)
        self._published[message.kind] += 1
        task.trace.add(asyncio.get_running_loop().time(), message, tuple(s.name for s in subs))
        for sub in subs:
            await sub.channel.send(message)
        return len(subs)

    @staticmethod
    def _count_rounds(router: Router, task: TaskScope, message: Message, subs: tuple[Subscription, ...]) -> None:
        for sub in subs:
            limit = router.round_limit(message.sender, sub.name)
            if limit is not None and task.rounds[(message.sender, sub.name)] >= limit:
                raise RoundLimitExceeded(f"{message.sender} -> {sub.name} already carried {limit} messages in task "
                                         f"{task.id}: that is the round bound of its loop in the cooperation graph")
        for sub in subs:
            task.rounds[(message.sender, sub.name)] += 1

    def _no_recipient(self, message: Message) -> str:
        watchers = [s.name for s in self._subs.values() if message.kind in s.watches]
        text = f"nobody receives {message.kind} from {message.sender}: "
        if self.router is None:
            return text + "no subscribed agent watches it"
        routed = list(self.router.route(message.sender, message.kind))
        if not routed:
            return text + f"the cooperation graph has no edge from {message.sender} carrying it"
        return text + (f"the graph sends it to {', '.join(routed)}, none of which is subscribed and watching it "
                       f"(watching: {', '.join(watchers) or 'nobody'})")

    def deliver_reply(self, reply: Message) -> None:
        """Hand a reply to the request it answers; a reply nobody waits for is counted and traced."""
        if reply.correlation_id is None:
            raise ValueError(f"{reply.kind} {reply.id} from {reply.sender} is not a reply: it answers no request")
        task = self._tasks.get(reply.task_id)
        pending = self._pending.get(reply.correlation_id)
        if task is not None:
            task.trace.add(asyncio.get_running_loop().time(), reply,
                           note="" if pending else "unclaimed: nobody waits for it")
            if reply.kind is MessageKind.REPLY and not task.ended:
                task.replies.append(reply)
        self._published[reply.kind] += 1
        if pending is None:
            self._unclaimed += 1
        else:
            pending.add(reply)

    async def request(self, message: Message, timeout: float | None = None) -> Message:
        """Publish ``message`` and return the first reply; ``AgentFailed`` when every recipient failed."""
        return await self._ask(message, timeout, gather=False)

    async def gather(self, message: Message, timeout: float | None = None) -> tuple[Message, ...]:
        """Publish ``message`` and return one reply (or ERROR reply) from every agent that received it."""
        return await self._ask(message, timeout, gather=True)

    async def _ask(self, message: Message, timeout: float | None, gather: bool):
        task = self._live_task(message)
        pending = self._pending[message.id] = PendingRequest(message, gather)
        task.pending.add(pending)
        try:
            async with asyncio.timeout(timeout):
                pending.expect(await self.publish(message))
                return await pending.future
        except TaskEnded:
            raise
        except TimeoutError:
            if timeout is None:
                raise  # not the request's own timeout (it has none): not ours to explain
            raise ReplyTimeout(message, timeout, pending.replies()) from None
        finally:
            del self._pending[message.id]
            task.pending.discard(pending)
            if pending.future.done() and not pending.future.cancelled():
                pending.future.exception()  # retrieved: an unawaited failure is not "never retrieved"
            else:
                pending.future.cancel()
            if pending.expected is None or len(pending.responders) < pending.expected:
                self._withdraw(task, message, pending.responders)

    def _withdraw(self, task: TaskScope, message: Message, spare: set[str]) -> None:
        """Nobody waits for answers to ``message`` any more: unqueue it and cancel the handlers still on it."""
        for sub in self._subs.values():
            sub.channel.purge(lambda m: m is message, task.error)
        task.cancel_handlers(message.id, spare=spare)

    def handler_finished(self, agent: str, task: TaskScope, message: Message, outcome: BaseException | None) -> None:
        """A handler of ``agent`` is done with ``message``: failures become ERROR replies and log records."""
        if ended_with_task(outcome):  # the task ended under it: not a failure
            return
        pending = self._pending.get(message.id)
        if outcome is None:
            if pending is not None and agent not in pending.responders:
                self.deliver_reply(message.failure(agent, "the handler returned without replying"))
            return
        log.error("agent %s failed on %s %s of task %s: %s", agent, message.kind, message.id, task.id, outcome)
        log.debug("the failure of %s in full", agent, exc_info=outcome)
        error = f"{type(outcome).__name__}: {outcome}"
        if pending is not None:
            self.deliver_reply(message.failure(agent, error))
        else:
            task.trace.add(asyncio.get_running_loop().time(), None, note=f"{agent} failed on {message.id}: {error}")

    # -- statistics and shutdown -----------------------------------------------------------------------------

    def statistics(self) -> BrokerStatistics:
        return BrokerStatistics(tuple(s.statistics() for s in self._subs.values()), dict(self._published),
                                len(self._tasks), self._finished, len(self._pending), self._unclaimed)

    async def close(self) -> None:
        """Cancel every open task, stop every worker, close every queue."""
        if self._closed:
            return
        self._closed = True
        for task in list(self._tasks.values()):
            self._end_task(task, "broker closed")
        for sub in self._subs.values():
            left = await sub.stop()
            if left:
                log.warning("broker closed with %d messages still queued for %s", left, sub.name)
