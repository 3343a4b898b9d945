"""What the agent team costs on top of its LLM calls: explain-and-fix against the scripted OpenAI-compatible server
(tests/scripted_llm.py, real HTTP on 127.0.0.1) answering every call after a fixed 100 ms.

1. Sequential tasks: N explain-and-fix tasks one after another, each on its own document so that no reply comes
   from the reply cache (diagnosis explains -> generation proposes -> review verifies: two LLM calls). Per task:
   wall time minus the sum of its LLM latencies (100 ms per call the server answered). Target <= 20 ms per task.
   The baseline, measured in the same run against the same server: the very HTTP requests the team sent (as the
   server recorded them) replayed directly with an ``LlmClient``, no team. Printed: both overheads per task, the
   team's own share (the difference), and the ratio of wall times.
2. Concurrency: waves of 100 concurrent tasks (distinct documents), with peak traced memory (tracemalloc), memory
   still held after each wave (it must level off: the reply cache and kept traces are bounded), the process's RSS
   growth, and the broker's tasks in flight after each wave (must be 0).

The server runs in this process, so its own HTTP handling counts in both the team's and the baseline's overhead;
the difference between them is the team's. Its record of requests is cleared after each wave, so the memory
figures are the team's.

    python benchmarks/team_overhead.py [--tasks 20] [--concurrent 100] [--waves 3] [--latency-ms 100]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import resource
import statistics
import time
import tracemalloc

from metagpt_lsp.agents.llm.client import LlmClient
from metagpt_lsp.agents.llm.settings import LlmEndpoint, LlmSettings
from metagpt_lsp.agents.syntax.snapshot import DocumentSnapshot
from metagpt_lsp.agents.team.coordinator import Team
from metagpt_lsp.agents.team.diagnosis_agent import DiagnosisAgent
from metagpt_lsp.agents.team.generation_agent import GenerationAgent
from metagpt_lsp.agents.team.payloads import FixRequest
from metagpt_lsp.testing.scripted_llm import Rule, ScriptedLlm

TARGET_MS = 20.0
BUGGY = '''import math


def mean(xs):
    """The average of xs (variant {n})."""
    total = sum(xs)
    return total / len(xs) - 1


def spread(xs):
    return max(xs) - min(xs)
'''
EXPLAIN = '{"cause": "It subtracts 1 from the average.", "line": "return total / len(xs) - 1"}'
FIX = '```python\ndef mean(xs):\n    """The average of xs."""\n    total = sum(xs)\n    return total / len(xs)\n```'
RULES = [Rule(EXPLAIN, last_user="What causes it"), Rule(FIX, last_user="Rewrite this code")]


def fix_request(n: int) -> FixRequest:
    snapshot = DocumentSnapshot.open(f"file:///bench/stats_{n}.py", 1, BUGGY.format(n=n), "python")
    start = snapshot.source.index(b"mean")
    return FixRequest(snapshot, start, start + 4, "mean([2, 4]) returned 2.0, expected 3.0", "pytest", "failed")


def client_for(server: ScriptedLlm, max_concurrent: int) -> LlmClient:
    settings = LlmSettings(request_timeout_s=30.0, max_concurrent_requests=max_concurrent)
    return LlmClient(settings, LlmEndpoint(server.base_url, server.model, None, embedded=False))


async def replay(client: LlmClient, body: dict) -> None:
    """Send one recorded request again, as the agent sent it (a JSON request through ``complete_json``)."""
    response_format = body.get("response_format") or {}
    if response_format.get("type") == "json_schema":
        await client.complete_json(body["messages"], response_format["json_schema"]["schema"],
                                   max_tokens=body["max_tokens"])
    else:
        await client.complete(body["messages"], max_tokens=body["max_tokens"], temperature=body["temperature"])


def describe(overheads_s: list[float]) -> str:
    ms = sorted(x * 1000 for x in overheads_s)
    p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
    return (f"mean {statistics.fmean(ms):6.2f}  median {statistics.median(ms):6.2f}  p95 {p95:6.2f}  "
            f"max {ms[-1]:6.2f} ms")


async def sequential(server: ScriptedLlm, tasks: int, latency_s: float) -> None:
    team_client, baseline_client = client_for(server, 2), client_for(server, 2)
    async with Team(team_client, deadline_s=60) as team:
        warm = await team.explain_and_fix(fix_request(-1))  # connection, imports, structured-output mode
        assert warm.ok, warm.reason
        for body in [r.body for r in server.completions]:
            await replay(baseline_client, body)
        team_walls, team_over, recorded = [], [], []
        for n in range(tasks):
            first = len(server.completions)
            started = time.perf_counter()
            result = await team.explain_and_fix(fix_request(n))
            wall = time.perf_counter() - started
            calls = server.completions[first:]
            assert result.ok, result.reason
            assert result.requests_sent == len(calls) and result.usage.cache_hits == 0, "a reply came from a cache"
            team_walls.append(wall)
            team_over.append(wall - len(calls) * latency_s)
            recorded.append([call.body for call in calls])
    base_walls, base_over = [], []
    for bodies in recorded:
        first = len(server.completions)
        started = time.perf_counter()
        for body in bodies:
            await replay(baseline_client, body)
        wall = time.perf_counter() - started
        assert len(server.completions) - first == len(bodies), "the baseline must send every request"
        base_walls.append(wall)
        base_over.append(wall - len(bodies) * latency_s)
    await team_client.aclose()
    await baseline_client.aclose()

    calls = sum(len(bodies) for bodies in recorded)
    own = statistics.fmean(team_over) - statistics.fmean(base_over)
    verdict = "meets" if statistics.fmean(team_over) * 1000 <= TARGET_MS else "MISSES"
    print(f"sequential: {tasks} explain-and-fix tasks, {calls} LLM calls at {latency_s * 1000:.0f} ms each "
          f"({calls / tasks:.0f} per task)")
    print(f"  team      wall - LLM latency per task: {describe(team_over)}")
    print(f"  baseline  wall - LLM latency per task: {describe(base_over)}  (same requests, LlmClient alone)")
    print(f"  the team's own share: {own * 1000:.2f} ms per task; wall-time ratio team/baseline "
          f"{sum(team_walls) / sum(base_walls):.3f}")
    print(f"  target <= {TARGET_MS:.0f} ms per task (wall - LLM latency): {verdict} it")


async def concurrent(server: ScriptedLlm, tasks: int, waves: int, latency_s: float) -> None:
    client = client_for(server, 64)
    async with Team(client, deadline_s=60) as team:
        warm = await team.explain_and_fix(fix_request(-2))
        assert warm.ok, warm.reason
        gc.collect()
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        tracemalloc.start()
        server.requests.clear()
        per_agent = min(DiagnosisAgent.concurrency, GenerationAgent.concurrency)
        floor_ms = (tasks / per_agent + 1) * latency_s * 1000  # diagnosis in batches, the last generation after
        print(f"concurrency: {waves} waves of {tasks} concurrent tasks (distinct documents), "
              f"{client.settings.max_concurrent_requests} LLM requests at a time; diagnosis and generation each "
              f"handle {per_agent} messages at a time, so a wave needs >= {floor_ms:.0f} ms (tracemalloc on: slower)")
        for wave in range(waves):
            tracemalloc.reset_peak()
            started = time.perf_counter()
            results = await asyncio.gather(*(team.explain_and_fix(fix_request(1000 * (wave + 1) + n))
                                             for n in range(tasks)))
            elapsed = time.perf_counter() - started
            failed = [r.reason for r in results if not r.ok]
            server.requests.clear()
            gc.collect()
            current, peak = tracemalloc.get_traced_memory()
            stats = team.broker.statistics()
            print(f"  wave {wave + 1}: {tasks - len(failed)}/{tasks} ok in {elapsed * 1000:7.1f} ms, peak traced "
                  f"{peak / 1024:8.1f} KiB, held after {current / 1024:8.1f} KiB, tasks in flight "
                  f"{stats.tasks_in_flight}, handlers running {stats.handling}")
            if failed:
                print(f"    failures: {sorted(set(failed))[:3]}")
        tracemalloc.stop()
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(f"  max RSS grew {(rss_after - rss_before) / 1024:.1f} MiB over {waves} waves; {stats.tasks_finished} "
              f"tasks finished; bounded: reply cache 256 replies, traces of the last {team.broker.keep_traces} tasks")
    await client.aclose()


async def main(args: argparse.Namespace) -> None:
    latency_s = args.latency_ms / 1000
    async with ScriptedLlm(RULES, latency_s=latency_s) as server:
        await sequential(server, args.tasks, latency_s)
        await concurrent(server, args.concurrent, args.waves, latency_s)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=20, help="sequential tasks (default 20)")
    parser.add_argument("--concurrent", type=int, default=100, help="tasks per concurrent wave (default 100)")
    parser.add_argument("--waves", type=int, default=3, help="concurrent waves (default 3)")
    parser.add_argument("--latency-ms", type=float, default=100.0, help="scripted latency per LLM call (default 100)")
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(main(parser.parse_args()))
