"""The broker's promises, each observed from outside: backpressure, ordering, cancellation reaching a real HTTP call,
deadlines that end a task with what it has, failing handlers, no leaked tasks, readable traces, graph routing."""

from __future__ import annotations

import asyncio
import gc
import logging
import weakref
from dataclasses import dataclass

import httpx2 as httpx  # the HTTP client the openai package ships with
import pytest

from metagpt_lsp.agents.broker.broker import Broker
from metagpt_lsp.agents.broker.messages import Failure, Message
from metagpt_lsp.agents.broker.messages import MessageKind as K
from metagpt_lsp.agents.broker.task_scope import (
    AgentFailed,
    NoRecipient,
    ReplyTimeout,
    RoundLimitExceeded,
    TaskCancelled,
    TaskDeadlineExceeded,
)
from metagpt_lsp.agents.team.cooperation import CooperationGraph


class Echo:
    """Replies with what it was sent."""

    def __init__(self, name: str, *watches: K, concurrency: int = 1) -> None:
        self.name, self.watches, self.concurrency = name, watches, concurrency

    async def handle(self, message: Message, context) -> None:
        context.reply(("echo", self.name, message.payload))


class Recorder:
    """Records the payloads it handles; sets ``done`` once it has seen ``expect`` of them."""

    def __init__(self, name: str, kind: K, expect: int) -> None:
        self.name, self.watches, self.expect = name, (kind,), expect
        self.seen: list[object] = []
        self.done = asyncio.Event()

    async def handle(self, message: Message, context) -> None:
        self.seen.append(message.payload)
        if len(self.seen) == self.expect:
            self.done.set()


class Hang:
    """Tells ``started`` (per task) that it began, then waits forever; records that it was cancelled."""

    def __init__(self, name: str, *watches: K) -> None:
        self.name, self.watches = name, watches
        self.started: dict[str, asyncio.Future[None]] = {}
        self.cancelled: list[str] = []

    async def handle(self, message: Message, context) -> None:
        started = self.started.setdefault(message.task_id, asyncio.get_running_loop().create_future())
        started.set_result(None)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.append(message.task_id)
            raise


async def test_a_full_queue_makes_the_publisher_wait_until_the_subscriber_consumes():
    release, first_started, all_handled = asyncio.Event(), asyncio.Event(), asyncio.Event()
    handled: list[int] = []

    class SlowReviewer:
        name, watches = "review", (K.SUBTASK_VERIFY,)

        async def handle(self, message: Message, context) -> None:
            handled.append(message.payload)
            first_started.set()
            await release.wait()
            if len(handled) == 3:
                all_handled.set()

    async with Broker(queue_size=1) as broker:
        broker.subscribe(SlowReviewer())
        async with broker.open_task() as task:
            await task.publish(K.SUBTASK_VERIFY, 1)  # the worker takes it at once and stays busy with it
            await first_started.wait()
            await task.publish(K.SUBTASK_VERIFY, 2)  # fills the queue of one
            about_to_publish, published = asyncio.Event(), asyncio.Event()

            async def publish_third() -> None:
                about_to_publish.set()
                await task.publish(K.SUBTASK_VERIFY, 3)
                published.set()

            publisher = asyncio.create_task(publish_third())
            await about_to_publish.wait()  # the publisher ran until it had to wait
            queue = broker.statistics().subscribers[0].queue
            assert not published.is_set()
            assert (queue.current_buffer_used, queue.max_buffer_size, queue.tasks_waiting_send) == (1, 1, 1)

            release.set()  # the subscriber consumes: room frees up, the publisher goes on
            await published.wait()
            await publisher
            await all_handled.wait()
    assert handled == [1, 2, 3]


async def test_each_subscriber_gets_each_publishers_messages_in_order():
    first = Recorder("generation", K.SUBTASK_VERIFY, expect=400)
    second = Recorder("review", K.SUBTASK_VERIFY, expect=400)
    async with Broker(queue_size=4) as broker:
        broker.subscribe(first)
        broker.subscribe(second)
        async with broker.open_task() as task:

            async def publish_all(who: str) -> None:
                for n in range(200):
                    await broker.publish(task.message(K.SUBTASK_VERIFY, (who, n), sender=who))

            await asyncio.gather(publish_all("coordinator"), publish_all("diagnosis"))
            await first.done.wait()
            await second.done.wait()
    for recorder in (first, second):
        for who in ("coordinator", "diagnosis"):
            assert [n for w, n in recorder.seen if w == who] == list(range(200))


async def test_cancelling_a_task_reaches_the_agents_in_flight_http_call():
    connected, hung_up, handler_cancelled = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connected.set()
        await reader.read()  # returns at end of stream: the client closed the connection
        hung_up.set()
        writer.close()

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/chat/completions"

    class LlmDiagnosis:
        name, watches = "diagnosis", (K.SUBTASK_EXPLAIN,)

        async def handle(self, message: Message, context) -> None:
            async with httpx.AsyncClient(trust_env=False) as client:
                try:
                    await client.post(url, json={"messages": [message.payload]}, timeout=60)
                except asyncio.CancelledError:
                    handler_cancelled.set()
                    raise

    async with server, asyncio.timeout(20), Broker() as broker:
        broker.subscribe(LlmDiagnosis())
        async with broker.open_task() as task:
            asking = asyncio.create_task(task.request(K.SUBTASK_EXPLAIN, "why does this fail?"))
            await connected.wait()
            assert broker.cancel_task(task.id) == 1
            await handler_cancelled.wait()
            await hung_up.wait()
            with pytest.raises(TaskCancelled):
                await asking
        stats = broker.statistics()
        assert stats.subscribers[0].cancelled == 1 and stats.handling == 0 and stats.tasks_in_flight == 0
        assert "task ended (cancelled): 1 handlers cancelled" in str(broker.trace(task.id))


async def test_a_deadline_ends_the_task_with_what_it_has_collected():
    generation = Hang("generation", K.SUBTASK_PROPOSE_FIX)
    async with Broker() as broker:
        broker.subscribe(Echo("diagnosis", K.SUBTASK_EXPLAIN))
        broker.subscribe(generation)
        async with broker.open_task(timeout=0.5) as task:
            explained = await task.request(K.SUBTASK_EXPLAIN, "E0602")
            with pytest.raises(TaskDeadlineExceeded) as ended:
                await task.request(K.SUBTASK_PROPOSE_FIX, "fix it")
            assert isinstance(ended.value, TimeoutError)
            assert ended.value.partial == (explained,) == task.collected
            assert explained.payload == ("echo", "diagnosis", "E0602")
            with pytest.raises(TaskDeadlineExceeded):  # nothing more goes out for an ended task
                await task.publish(K.SUBTASK_EXPLAIN, "again")
        assert generation.cancelled == [task.id]
        assert "task ended (deadline)" in str(broker.trace(task.id))


async def test_a_failing_handler_becomes_an_error_reply_and_the_agent_keeps_working(caplog):
    class Flaky:
        name, watches = "review", (K.SUBTASK_VERIFY,)

        async def handle(self, message: Message, context) -> None:
            if message.payload == "bad":
                raise ValueError("patch does not parse")
            context.reply("ok")

    async with Broker() as broker:
        broker.subscribe(Flaky())
        async with broker.open_task() as task:
            with caplog.at_level(logging.ERROR, logger="metagpt_lsp.agents.broker.broker"), \
                    pytest.raises(AgentFailed) as failed:
                await task.request(K.SUBTASK_VERIFY, "bad")
            assert failed.value.failures[0].kind is K.ERROR
            assert failed.value.failures[0].payload == Failure("review", "ValueError: patch does not parse")
            assert "review failed: ValueError: patch does not parse" in str(failed.value)
            assert (await task.request(K.SUBTASK_VERIFY, "good")).payload == "ok"
        assert "agent review failed on subtask.verify" in caplog.text
        assert broker.statistics().subscribers[0].failed == 1


async def test_a_handler_that_never_replies_fails_the_request_instead_of_hanging_it():
    async with Broker() as broker:
        broker.subscribe(Recorder("review", K.SUBTASK_VERIFY, expect=1))
        async with broker.open_task() as task:
            with pytest.raises(AgentFailed, match="returned without replying"):
                await task.request(K.SUBTASK_VERIFY, "patch")


async def test_a_request_timeout_cancels_the_handler_nobody_waits_for():
    review = Hang("review", K.SUBTASK_VERIFY)
    async with Broker() as broker:
        broker.subscribe(review)
        async with broker.open_task() as task:
            asking = asyncio.create_task(task.request(K.SUBTASK_VERIFY, "patch", timeout=0.5))
            await review.started.setdefault(task.id, asyncio.get_running_loop().create_future())
            with pytest.raises(ReplyTimeout, match="no reply to subtask.verify"):
                await asking
            await task.handlers_stopped()
            assert review.cancelled == [task.id]
            assert not task.ended  # only the request gave up, the task goes on


async def test_gather_collects_one_reply_from_every_recipient():
    async with Broker() as broker:
        broker.subscribe(Echo("diagnosis", K.SUBTASK_REVIEW_UNITS))
        broker.subscribe(Echo("review", K.SUBTASK_REVIEW_UNITS))
        async with broker.open_task() as task:
            replies = await task.gather(K.SUBTASK_REVIEW_UNITS, "unit")
    assert sorted(r.sender for r in replies) == ["diagnosis", "review"]
    assert all(r.correlation_id == replies[0].cause for r in replies)


async def test_a_message_nobody_receives_is_refused_not_dropped():
    async with Broker() as broker:
        broker.subscribe(Echo("review", K.SUBTASK_VERIFY))
        async with broker.open_task() as task:
            with pytest.raises(NoRecipient, match="nobody receives subtask.explain"):
                await task.publish(K.SUBTASK_EXPLAIN, "x")


async def test_no_task_leaks_after_a_thousand_tasks():
    slow = Hang("generation", K.SUBTASK_PROPOSE_FIX)

    class Broken:
        name, watches = "review", (K.SUBTASK_VERIFY,)

        async def handle(self, message: Message, context) -> None:
            raise RuntimeError("boom")

    async with Broker() as broker:
        broker.subscribe(Echo("diagnosis", K.SUBTASK_EXPLAIN, concurrency=4))
        broker.subscribe(slow, concurrency=4)
        broker.subscribe(Broken())
        before = asyncio.all_tasks()
        logging.getLogger("metagpt_lsp.agents.broker.broker").disabled = True
        try:
            for n in range(1000):
                async with broker.open_task(timeout=10) as task:
                    if n % 3 == 0:
                        assert (await task.request(K.SUBTASK_EXPLAIN, n)).payload[2] == n
                    elif n % 3 == 1:
                        asking = asyncio.create_task(task.request(K.SUBTASK_PROPOSE_FIX, n))
                        await slow.started.setdefault(task.id, asyncio.get_running_loop().create_future())
                        task.cancel()
                        with pytest.raises(TaskCancelled):
                            await asking
                    else:
                        with pytest.raises(AgentFailed):
                            await task.request(K.SUBTASK_VERIFY, n)
        finally:
            logging.getLogger("metagpt_lsp.agents.broker.broker").disabled = False
        assert asyncio.all_tasks() == before
        stats = broker.statistics()
        assert (stats.tasks_in_flight, stats.handling, stats.requests_waiting, stats.tasks_finished) == (0, 0, 0, 1000)
        assert len(slow.cancelled) == 333
        assert stats.published == {"subtask.explain": 334, "reply": 334, "subtask.propose_fix": 333,
                                    "subtask.verify": 333, "error": 333}
        assert all(s.queue.current_buffer_used == 0 for s in stats.subscribers)


@dataclass(frozen=True)
class Document:
    uri: str
    text: str


async def test_the_trace_shows_every_message_of_the_task_in_order():
    async with Broker(keep_traces=2) as broker:
        broker.subscribe(Echo("diagnosis", K.SUBTASK_EXPLAIN))
        async with broker.open_task(task_id="t-explain") as task:
            await task.request(K.SUBTASK_EXPLAIN, "undefined name 'foo'")
            document = Document("file:///a.py", "x = foo()\n" * 10_000)
            await task.request(K.SUBTASK_EXPLAIN, document)
        kept_alive = weakref.ref(document)
        del document, task
        trace = broker.trace("t-explain")
        assert trace.kinds() == [K.SUBTASK_EXPLAIN, K.REPLY] * 2
        text = str(trace)
        lines = text.splitlines()
        assert lines[0].startswith("task t-explain: ended (completed) after")
        assert "coordinator -> subtask.explain => diagnosis" in lines[1] and "undefined name 'foo'" in lines[1]
        assert "diagnosis -> reply (re " in lines[2] and "'echo'" in lines[2]
        assert lines[1].split()[0].startswith("+") and lines[1].split()[1] == "ms"
        assert "Document(uri='file:///a.py', text='x = foo()\\nx = foo()" in lines[3] and len(lines[3]) < 160
        async with broker.open_task() as other:
            await other.request(K.SUBTASK_EXPLAIN, "another task")
        gc.collect()
        assert kept_alive() is None  # the kept trace holds a summary of the document, not the document
        async with broker.open_task() as other:  # only the last two traces are kept
            await other.request(K.SUBTASK_EXPLAIN, "and one more")
        with pytest.raises(LookupError, match="last 2 tasks"):
            broker.trace("t-explain")


async def test_the_cooperation_graph_decides_who_receives_and_bounds_the_retry_loop():
    graph = CooperationGraph.default()
    async with Broker(router=graph) as broker:
        generation = Recorder("generation", K.REJECT, expect=3)
        review = Recorder("review", K.SUBTASK_VERIFY, expect=1)
        broker.subscribe(generation)
        broker.subscribe(review)
        with pytest.raises(ValueError, match="not in the cooperation graph"):
            broker.subscribe(Echo("tester", K.SUBTASK_VERIFY))
        async with broker.open_task() as task:
            assert await broker.publish(task.message(K.SUBTASK_VERIFY, "patch", sender="generation")) == 1
            with pytest.raises(NoRecipient, match="no edge from diagnosis carrying it"):
                await broker.publish(task.message(K.SUBTASK_VERIFY, "patch", sender="diagnosis"))
            for n in range(graph.max_rounds("generation", "review")):
                await broker.publish(task.message(K.REJECT, n, sender="review"))
            with pytest.raises(RoundLimitExceeded, match="review -> generation already carried 3 messages"):
                await broker.publish(task.message(K.REJECT, "once more", sender="review"))
            await generation.done.wait()
    assert generation.seen == [0, 1, 2] and review.seen == ["patch"]


async def test_statistics_count_kinds_queue_depths_and_latencies():
    async with Broker(queue_size=8) as broker:
        broker.subscribe(Echo("diagnosis", K.SUBTASK_EXPLAIN))
        async with broker.open_task() as task:
            for n in range(5):
                await task.request(K.SUBTASK_EXPLAIN, n)
        stats = broker.statistics()
    (diagnosis,) = stats.subscribers
    assert stats.published == {"subtask.explain": 5, "reply": 5}
    assert (diagnosis.handled, diagnosis.failed, diagnosis.queue.max_buffer_size) == (5, 0, 8)
    assert 0 < diagnosis.latency_ms_mean <= diagnosis.latency_ms_max
    assert "diagnosis: queue 0/8" in str(stats)
