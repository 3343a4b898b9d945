"""Every fault the scripted LLM server can inject reaches the user as a clear ``TeamResult.reason`` and never as a
broken or partial edit: ``edits == ()`` whenever ``ok`` is False, and whenever ``ok`` is True the patched document
parses. And a thousand explain-and-fix tasks over real HTTP leave no asyncio task and no broker task behind.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from test_team import BUGGY, EXPLAIN, FIXED_FUNCTION, apply, fix_request, snapshot_of

from metagpt_lsp.agents.syntax.code_units import code_units
from metagpt_lsp.agents.syntax.problems import syntax_problems
from metagpt_lsp.agents.team.coordinator import Team
from metagpt_lsp.agents.team.payloads import FixRequest, GenerateRequest, ReviewRequest, TeamResult
from metagpt_lsp.agents.team.review_cache import ReviewCache
from metagpt_lsp.testing.scripted_llm import Rule

ASKS_CAUSE = "What causes it"
ASKS_FIX = "Rewrite this code"
FIX_REPLY = f"```python\n{FIXED_FUNCTION}```"
TOO_LONG = '```python\ndef mean(xs):\n    """' + "The average of xs. " * 150 + '"""\n    return sum(xs) / len(xs)\n```'


def assert_safe(result: TeamResult, snapshot) -> str:
    """The invariant of every result: no edit without ok; an ok edit leaves a document that parses. Returns it."""
    if not result.ok:
        assert result.edits == (), "a failed request must not carry an edit"
        assert result.reason.strip(), "a failed request must say why"
        return snapshot.text
    patched = apply(snapshot, result.edits)
    assert not syntax_problems(snapshot_of(patched).tree, patched.encode()), patched
    return patched


@pytest.fixture
async def team(llm_client, tmp_path):
    async with Team(llm_client, review_cache=ReviewCache(tmp_path / "cache.sqlite3"), deadline_s=10) as team:
        yield team


FAULTS = {
    "429 on every request": ([Rule(fault="429")], ["rate limiting requests (HTTP 429)", "wait a minute"]),
    "500 on every request": ([Rule(fault="500")], ["failed with HTTP 500 after 3 attempts"]),
    "malformed JSON body": ([Rule(fault="malformed")], ["not valid OpenAI-compatible JSON"]),
    "connection cut inside the body": (
        [Rule(EXPLAIN, last_user=ASKS_CAUSE), Rule(FIX_REPLY, fault="truncate")],
        ["broke the connection before its reply was complete after 3 attempts", "partial reply was discarded"]),
    "generation replies prose, no code block": (
        [Rule(EXPLAIN, last_user=ASKS_CAUSE), Rule("You should drop the minus one.", last_user=ASKS_FIX)],
        ["no safe fix after 2 round(s)", "does not parse", "repeated code already tried"]),
    "generation replies nothing": (
        [Rule(EXPLAIN, last_user=ASKS_CAUSE), Rule("", last_user=ASKS_FIX)], ["the model's reply held no code"]),
    "generation's code cut by max_tokens": (
        [Rule(EXPLAIN, last_user=ASKS_CAUSE), Rule(TOO_LONG, last_user=ASKS_FIX)],
        ["cut off by llm.maxTokens", "raise llm.maxTokens"]),
    "diagnosis replies text that is not JSON": (
        [Rule("the cause is {probably the - 1", last_user=ASKS_CAUSE)], ["reply was not JSON"]),
    "diagnosis replies a JSON list": ([Rule("[1, 2, 3]", last_user=ASKS_CAUSE)], ["JSON reply lacks"]),
    "diagnosis replies JSON without a cause": (
        [Rule('{"line": "return total"}', last_user=ASKS_CAUSE)], ["JSON reply lacks cause"]),
}


@pytest.mark.parametrize("rules, words", FAULTS.values(), ids=FAULTS.keys())
async def test_each_fault_gives_a_clear_reason_and_no_edit(team, scripted_llm, rules, words):
    scripted_llm.script(*rules)
    snapshot = snapshot_of()
    result = await team.explain_and_fix(fix_request(snapshot))
    assert_safe(result, snapshot)
    assert not result.ok and result.edits == ()
    for phrase in words:
        assert phrase in result.reason, result.reason
    assert "Traceback" not in result.reason and "sk-scripted" not in result.reason
    assert team.broker.statistics().tasks_in_flight == 0


async def test_rate_limits_are_retried_before_the_user_is_told(team, scripted_llm):
    scripted_llm.script(Rule(fault="429", retry_after_s=0.01))
    snapshot = snapshot_of()
    request = FixRequest(snapshot, 0, 4, "off by one", "review", known_cause="It subtracts 1.")  # no diagnosis call
    result = await team.explain_and_fix(request)
    assert_safe(result, snapshot)
    assert not result.ok and "HTTP 429) after 3 attempts" in result.reason
    assert len(scripted_llm.completions) == 3, "one request and llm.maxRetries (2) retries"


async def test_a_rate_limit_that_passes_still_gives_the_fix(team, scripted_llm):
    scripted_llm.script(Rule(EXPLAIN, last_user=ASKS_CAUSE), Rule(fault="429", times=1, retry_after_s=0.01),
                        Rule(FIX_REPLY, last_user=ASKS_FIX))
    snapshot = snapshot_of()
    result = await team.explain_and_fix(fix_request(snapshot))
    assert result.ok, result.reason
    assert "return total / len(xs)\n" in assert_safe(result, snapshot)
    assert len(scripted_llm.completions) == 3


async def test_a_rate_limit_on_the_first_request_of_all_still_gives_the_fix(team, scripted_llm):
    scripted_llm.script(Rule(fault="429", times=1, retry_after_s=0.01), Rule(EXPLAIN, last_user=ASKS_CAUSE),
                        Rule(FIX_REPLY, last_user=ASKS_FIX))
    snapshot = snapshot_of()
    result = await team.explain_and_fix(fix_request(snapshot))
    assert_safe(result, snapshot)
    assert result.ok, result.reason


async def test_a_one_word_reply_without_code_never_replaces_the_function(team, scripted_llm):
    scripted_llm.script(Rule(EXPLAIN, last_user=ASKS_CAUSE), Rule("Fixed", last_user=ASKS_FIX))
    snapshot = snapshot_of()
    result = await team.explain_and_fix(fix_request(snapshot))
    assert "def mean" in assert_safe(result, snapshot)
    assert not result.ok


async def test_a_hang_in_generation_ends_at_the_deadline_with_the_explanation_and_no_edit(llm_client, scripted_llm):
    scripted_llm.script(Rule(EXPLAIN, last_user=ASKS_CAUSE), Rule(fault="hang", last_user=ASKS_FIX))
    snapshot = snapshot_of()
    async with Team(llm_client, deadline_s=0.5) as team:
        result = await team.explain_and_fix(fix_request(snapshot))
        assert_safe(result, snapshot)
        assert not result.ok and "ran out of time" in result.reason
        assert result.explanation == "It subtracts 1 from the average.", "what the team learnt is kept"
        await asyncio.wait_for(scripted_llm.completions[-1].disconnected.wait(), 5)
        assert team.broker.statistics().tasks_in_flight == 0


async def test_generation_refuses_partial_code_cut_by_max_tokens(team, scripted_llm):
    text = 'def is_palindrome(word):\n    """True when word reads the same backwards."""\n    pass\n'
    snapshot = snapshot_of(text)
    scripted_llm.script(Rule('```python\ndef is_palindrome(word):\n    return word == word[::-1]' + "  # !" * 900,
                             last_user="Implement this function"))
    result = await team.generate(GenerateRequest(snapshot, 0, len(snapshot.source) - 1, "", "stub"))
    assert_safe(result, snapshot)
    assert not result.ok and "cut off by llm.maxTokens" in result.reason


OFF_BY_ONE = json.dumps(
    {"findings": [{"quote": "return total / len(xs) - 1", "problem": "Off by one.", "severity": "error"}]})


AGREES = Rule(json.dumps({"call": "mean([2, 4])", "expected": "3.0", "actual": "2.0", "real": True}),
              last_user="A reviewer claims")  # diagnosis, challenged, agrees: the finding survives as Information


async def test_garbage_json_from_review_keeps_the_units_already_reviewed(team, scripted_llm):
    scripted_llm.script(AGREES, Rule(OFF_BY_ONE, last_user="def mean"),
                        Rule("{findings: [oops", last_user="def spread", latency_s=0.2))  # after mean's answer
    snapshot = snapshot_of()
    result = await team.review(ReviewRequest(snapshot, tuple(code_units(snapshot))))
    assert not result.ok and result.edits == ()
    assert "1 of 2 unit(s) reviewed" in result.reason and "not JSON" in result.reason
    assert [f.message.split(" (")[0] for f in result.findings] == ["Off by one."]


async def test_a_unit_whose_review_was_garbage_is_asked_again_next_time(team, scripted_llm):
    scripted_llm.script(AGREES, Rule(OFF_BY_ONE, last_user="def mean"),
                        Rule("{findings: [oops", last_user="def spread", latency_s=0.2))
    snapshot = snapshot_of()
    units = tuple(code_units(snapshot))
    assert not (await team.review(ReviewRequest(snapshot, units))).ok
    scripted_llm.script(Rule('{"findings": []}', last_user="def spread"))
    again = await team.review(ReviewRequest(snapshot, units))
    assert again.ok and [f.message.split(" (")[0] for f in again.findings] == ["Off by one."]
    assert len(scripted_llm.completions) == 4, "the failed unit is asked again; the reviewed one comes from the cache"


async def test_a_unit_that_fails_first_does_not_cost_the_findings_of_the_others(team, scripted_llm):
    scripted_llm.script(AGREES, Rule(OFF_BY_ONE, last_user="def mean", latency_s=0.2),
                        Rule("{findings: [oops", last_user="def spread"))
    snapshot = snapshot_of()
    result = await team.review(ReviewRequest(snapshot, tuple(code_units(snapshot))))
    assert not result.ok and "not JSON" in result.reason
    assert [f.message.split(" (")[0] for f in result.findings] == ["Off by one."]


def _own_tasks() -> set[asyncio.Task]:
    """Every asyncio task except the scripted server's keep-alive connections (they belong to the fake endpoint)."""
    return {t for t in asyncio.all_tasks() if t.get_coro().__qualname__ != "ScriptedLlm._on_connection"}


async def test_a_thousand_explain_and_fix_tasks_leave_nothing_behind(make_llm_client, scripted_llm):
    """1000 concurrent tasks, each a distinct document, so each makes its two LLM calls over real HTTP (no cache)."""
    scripted_llm.script(Rule(EXPLAIN, last_user=ASKS_CAUSE), Rule(FIX_REPLY, last_user=ASKS_FIX))
    count = 1000
    snapshots = [snapshot_of(BUGGY.replace("The average of xs.", f"The average of xs ({n})."), f"file:///m{n}.py")
                 for n in range(count)]
    async with Team(make_llm_client(), deadline_s=60) as team:
        first = await team.explain_and_fix(fix_request(snapshot_of()))
        assert first.ok, first.reason
        before = _own_tasks()
        results = await asyncio.gather(*(team.explain_and_fix(fix_request(s)) for s in snapshots))
        assert all(r.ok for r in results), {r.reason for r in results if not r.ok}
        assert sum(r.requests_sent for r in results) == 2 * count
        assert len(scripted_llm.completions) == 2 * count + 2
        assert _own_tasks() == before, "no task outlives its request"
        stats = team.broker.statistics()
        assert (stats.tasks_in_flight, stats.requests_waiting, stats.handling) == (0, 0, 0)
        assert all(s.queue.current_buffer_used == 0 for s in stats.subscribers)
        with pytest.raises(LookupError):
            team.broker.trace(first.task_id)  # traces are kept for the last tasks only: memory stays bounded
