"""How many messages per second the broker carries, and whether 100 concurrent tasks stay within bounded memory.

1. Throughput: one publisher, one subscribed agent, N messages of one task (publish -> the agent's handler runs).
   Target >= 50,000 messages/s. The same run measures a bare ``asyncio.Queue`` pass-through (bounded, one
   consumer task awaiting the same handler) as the baseline, and prints the broker's rate as a ratio of it.
   Also measured: the same through the cooperation graph (routing and round counting on), and request/reply
   round trips.
2. Concurrency: waves of 100 concurrent explain-and-fix tasks (diagnosis explains; generation proposes and asks
   review to verify) with 5 ms of simulated LLM latency per agent call. Prints wall time per wave, peak traced
   memory (tracemalloc), the memory still held after each wave (it must not grow from wave to wave), and the
   RSS growth of the process.

    python benchmarks/broker_throughput.py [--messages N] [--waves N]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import resource
import time
import tracemalloc

from metagpt_lsp.agents.broker.broker import Broker
from metagpt_lsp.agents.broker.messages import Message
from metagpt_lsp.agents.broker.messages import MessageKind as K
from metagpt_lsp.agents.team.cooperation import CooperationGraph

TARGET_MESSAGES_PER_S = 50_000


class Counter:
    """The cheapest useful agent: counts what it handles and says when it has seen ``expect`` messages."""

    def __init__(self, name: str, kind: K, expect: int) -> None:
        self.name, self.watches, self.expect, self.count = name, (kind,), expect, 0
        self.done = asyncio.Event()

    async def handle(self, message: Message, context) -> None:
        self.count += 1
        if self.count == self.expect:
            self.done.set()


class Echo:
    def __init__(self, name: str, kind: K, latency_s: float = 0.0, concurrency: int = 1) -> None:
        self.name, self.watches, self.latency_s, self.concurrency = name, (kind,), latency_s, concurrency

    async def handle(self, message: Message, context) -> None:
        if self.latency_s:
            await asyncio.sleep(self.latency_s)  # stands in for an LLM call
        context.reply(("echo", message.payload))


class Generation:
    """Proposes a patch, then asks review to verify it (agent to agent, along generation -> review)."""

    name, watches, concurrency = "generation", (K.SUBTASK_PROPOSE_FIX,), 128

    def __init__(self, latency_s: float) -> None:
        self.latency_s = latency_s

    async def handle(self, message: Message, context) -> None:
        await asyncio.sleep(self.latency_s)
        verdict = await context.request(K.SUBTASK_VERIFY, ("patch", message.payload))
        context.reply(verdict.payload)


async def baseline_rate(n: int, queue_size: int) -> float:
    queue: asyncio.Queue[Message] = asyncio.Queue(queue_size)
    agent = Counter("review", K.SUBTASK_VERIFY, n)

    async def consume() -> None:
        while True:
            message = await queue.get()
            await agent.handle(message, None)

    consumer = asyncio.create_task(consume())
    started = time.perf_counter()
    for i in range(n):
        await queue.put(Message("t", K.SUBTASK_VERIFY, "coordinator", i))
    await agent.done.wait()
    elapsed = time.perf_counter() - started
    consumer.cancel()
    await asyncio.gather(consumer, return_exceptions=True)
    return n / elapsed


async def broker_rate(n: int, queue_size: int, graph: CooperationGraph | None) -> float:
    agent = Counter("review", K.SUBTASK_VERIFY, n)
    async with Broker(router=graph, queue_size=queue_size) as broker:
        broker.subscribe(agent)
        async with broker.open_task() as task:
            started = time.perf_counter()
            for i in range(n):
                await broker.publish(task.message(K.SUBTASK_VERIFY, i))
            await agent.done.wait()
            elapsed = time.perf_counter() - started
    return n / elapsed


async def request_rate(n: int) -> float:
    async with Broker(router=CooperationGraph.default()) as broker:
        broker.subscribe(Echo("diagnosis", K.SUBTASK_EXPLAIN))
        async with broker.open_task() as task:
            started = time.perf_counter()
            for i in range(n):
                await task.request(K.SUBTASK_EXPLAIN, i)
            return n / (time.perf_counter() - started)


async def concurrent_tasks(waves: int, tasks: int, latency_s: float) -> None:
    async with Broker(router=CooperationGraph.default(), keep_traces=100) as broker:
        broker.subscribe(Echo("diagnosis", K.SUBTASK_EXPLAIN, latency_s, concurrency=128))
        broker.subscribe(Generation(latency_s))
        broker.subscribe(Echo("review", K.SUBTASK_VERIFY, latency_s, concurrency=128))

        async def explain_and_fix(n: int) -> object:
            async with broker.open_task(timeout=30) as task:
                explanation = await task.request(K.SUBTASK_EXPLAIN, ("diagnostic", n))
                return (await task.request(K.SUBTASK_PROPOSE_FIX, explanation.payload)).payload

        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        tracemalloc.start()
        for wave in range(1, waves + 1):
            tracemalloc.reset_peak()
            started = time.perf_counter()
            results = await asyncio.gather(*(explain_and_fix(n) for n in range(tasks)))
            elapsed = time.perf_counter() - started
            gc.collect()
            current, peak = tracemalloc.get_traced_memory()
            stats = broker.statistics()
            assert len(results) == tasks and stats.tasks_in_flight == 0 and stats.handling == 0
            print(f"  wave {wave}: {tasks} tasks in {elapsed * 1000:7.1f} ms "
                  f"(critical path {3 * latency_s * 1000:.0f} ms), peak traced {peak / 1024:7.1f} KiB, "
                  f"held after {current / 1024:7.1f} KiB, in flight {stats.tasks_in_flight}")
        tracemalloc.stop()
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(f"  max RSS grew {(rss_after - rss_before) / 1024:.1f} MiB over {waves} waves; "
              f"{stats.tasks_finished} tasks finished, traces kept for the last {broker.keep_traces}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--waves", type=int, default=8)
    args = parser.parse_args()
    n, queue_size = args.messages, 64

    await broker_rate(n // 10, queue_size, None)  # warm up
    baseline = max([await baseline_rate(n, queue_size) for _ in range(3)])
    plain = max([await broker_rate(n, queue_size, None) for _ in range(3)])
    routed = max([await broker_rate(n, queue_size, CooperationGraph.default()) for _ in range(3)])
    round_trips = max([await request_rate(n // 5) for _ in range(3)])
    verdict = "met" if plain >= TARGET_MESSAGES_PER_S else "NOT met"
    print(f"throughput, {n:,} messages, queues of {queue_size} (best of 3):")
    print(f"  bare asyncio.Queue pass-through (baseline) {baseline:12,.0f} msg/s")
    print(f"  broker publish -> handler                  {plain:12,.0f} msg/s  "
          f"= {plain / baseline:.2f} x baseline; target >= {TARGET_MESSAGES_PER_S:,}: {verdict}")
    print(f"  broker routed by the cooperation graph     {routed:12,.0f} msg/s  = {routed / baseline:.2f} x baseline")
    print(f"  request -> reply round trips               {round_trips:12,.0f} /s")
    print(f"concurrency: {args.waves} waves of 100 concurrent explain-and-fix tasks, 5 ms per simulated LLM call:")
    await concurrent_tasks(args.waves, 100, 0.005)


if __name__ == "__main__":
    asyncio.run(main())
