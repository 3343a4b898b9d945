"""The agent team end to end against the scripted OpenAI-compatible server over real HTTP: explain-and-fix,
generation and review, with rejections, faults, deadlines and cancellation."""

from __future__ import annotations

import asyncio
import json

import pytest

from metagpt_lsp.agents.syntax.code_units import code_units
from metagpt_lsp.agents.syntax.problems import syntax_problems
from metagpt_lsp.agents.syntax.snapshot import DocumentSnapshot
from metagpt_lsp.agents.team.coordinator import Team
from metagpt_lsp.agents.team.payloads import FixRequest, GenerateRequest, ReviewRequest
from metagpt_lsp.agents.team.review_cache import ReviewCache
from metagpt_lsp.testing.scripted_llm import Rule

BUGGY = '''import math


def mean(xs):
    """The average of xs."""
    total = sum(xs)
    return total / len(xs) - 1


def spread(xs):
    return max(xs) - min(xs)
'''
FIXED_FUNCTION = '''def mean(xs):
    """The average of xs."""
    total = sum(xs)
    return total / len(xs)
'''
EXPLAIN = json.dumps({"cause": "It subtracts 1 from the average.", "line": "return total / len(xs) - 1"})


def snapshot_of(text: str = BUGGY, uri: str = "file:///tmp/stats.py", version: int = 7) -> DocumentSnapshot:
    return DocumentSnapshot.open(uri, version, text, "python")


def fix_request(snapshot: DocumentSnapshot) -> FixRequest:
    start = snapshot.source.index(b"mean")
    return FixRequest(snapshot, start, start + 4, "mean([2, 4]) returned 2.0, expected 3.0", "pytest", "failed")


def apply(snapshot: DocumentSnapshot, edits) -> str:
    data = snapshot.source
    for edit in sorted(edits, key=lambda e: e.start_byte, reverse=True):
        data = data[:edit.start_byte] + edit.new_text.encode() + data[edit.end_byte:]
    return data.decode()


@pytest.fixture
async def team(llm_client, tmp_path):
    async with Team(llm_client, review_cache=ReviewCache(tmp_path / "cache.sqlite3"), deadline_s=10) as team:
        yield team


async def test_explain_and_fix_returns_a_verified_minimal_edit(team, scripted_llm):
    scripted_llm.script(Rule(EXPLAIN, last_user="What causes it"),
                        Rule(f"Here you go:\n```python\n{FIXED_FUNCTION}```", last_user="Rewrite this code"))
    padding = "".join(f"\n\ndef helper_{n}(value):\n    return value * {n} + len(str(value))\n" for n in range(60))
    snapshot = snapshot_of(BUGGY + padding)
    steps: list[str] = []
    result = await team.explain_and_fix(fix_request(snapshot), steps.append)
    assert result.ok, result.reason
    assert (result.uri, result.version, result.rounds) == (snapshot.uri, 7, 1)
    assert result.explanation == "It subtracts 1 from the average."
    assert len(result.edits) == 1 and result.edits[0].new_text == "    return total / len(xs)"
    fixed = apply(snapshot, result.edits)
    assert "return total / len(xs)\n" in fixed and "def spread" in fixed
    assert not syntax_problems(snapshot_of(fixed).tree, fixed.encode())
    assert steps[0].startswith("diagnosis") and any(step.startswith("review") for step in steps)
    prompts = [request.last_user_message for request in scripted_llm.completions]
    assert len(prompts) == 2 and all("def spread" not in prompt and "helper_1" not in prompt for prompt in prompts), \
        "only the function is sent, not the whole file"
    assert "import math" in prompts[1], "with the file's imports"
    assert result.usage.requests == 2 and result.usage.prompt_tokens > 0
    assert "coordinator -> subtask.explain" in team.last_trace()


async def test_a_rejected_patch_goes_back_with_the_reason_and_the_next_round_is_used(team, scripted_llm):
    scripted_llm.script(
        Rule(EXPLAIN, last_user="What causes it"),
        Rule("```python\ndef mean(xs)\n    return sum(xs) / len(xs)\n```", last_user="Rewrite this code", times=1),
        Rule(f"```python\n{FIXED_FUNCTION}```", last_user="Rewrite this code"))
    result = await team.explain_and_fix(fix_request(snapshot_of()))
    assert result.ok and result.rounds == 2
    second_prompt = scripted_llm.completions[-1].last_user_message
    assert "rejected" in second_prompt and "does not parse" in second_prompt


async def test_no_round_accepted_means_no_edit_and_a_reason(team, scripted_llm):
    scripted_llm.script(Rule(EXPLAIN, last_user="What causes it"),
                        Rule("```python\ndef mean(xs:\n    return 0\n```", last_user="Rewrite this code"))
    result = await team.explain_and_fix(fix_request(snapshot_of()))
    assert not result.ok and result.edits == ()
    assert "does not parse" in result.reason
    assert "no safe fix after 2 round(s)" in result.reason and "round 2 repeated code already tried" in result.reason, \
        "the same answer twice: no third round"


@pytest.mark.parametrize("fault, words", [("500", "500"), ("malformed", "")])
async def test_llm_faults_give_a_clear_reason_and_never_an_edit(team, scripted_llm, fault, words):
    scripted_llm.script(Rule(fault=fault))
    result = await team.explain_and_fix(fix_request(snapshot_of()))
    assert not result.ok and result.edits == ()
    assert "LLM" in result.reason and words in result.reason


async def test_the_deadline_ends_the_task_with_a_clear_reason(llm_client, scripted_llm, tmp_path):
    scripted_llm.script(Rule(fault="hang"))
    async with Team(llm_client, deadline_s=0.5) as team:
        result = await team.explain_and_fix(fix_request(snapshot_of()))
        assert not result.ok and "ran out of time" in result.reason
        await asyncio.wait_for(scripted_llm.completions[-1].disconnected.wait(), 5)
        assert team.broker.statistics().tasks_in_flight == 0


async def test_cancelling_the_caller_cancels_the_llm_call(team, scripted_llm):
    scripted_llm.script(Rule(fault="hang"))
    call = asyncio.create_task(team.explain_and_fix(fix_request(snapshot_of())))
    await scripted_llm.wait_for_requests(1)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    await asyncio.wait_for(scripted_llm.completions[-1].disconnected.wait(), 5)
    assert team.broker.statistics().tasks_in_flight == 0


async def test_generate_fills_a_stub_with_code_that_parses(team, scripted_llm):
    text = 'def is_palindrome(word):\n    """True when word reads the same backwards."""\n    pass\n'
    snapshot = snapshot_of(text)
    scripted_llm.script(Rule('```python\ndef is_palindrome(word):\n    """True when word reads the same backwards."""\n'
                             '    return word == word[::-1]\n```', last_user="Implement this function"))
    result = await team.generate(GenerateRequest(snapshot, 0, len(snapshot.source) - 1, "", "stub"))
    assert result.ok, result.reason
    assert apply(snapshot, result.edits).endswith("    return word == word[::-1]\n")


async def test_review_anchors_findings_by_quote_and_remembers_units(team, scripted_llm):
    findings = {"findings": [
        {"quote": "return total / len(xs) - 1", "problem": "Off by one: subtracts 1.", "severity": "error"},
        {"quote": "this text is nowhere", "problem": "invented", "severity": "warning"}]}
    agrees = json.dumps({"call": "mean([2, 4])", "expected": "3.0", "actual": "2.0", "real": True})
    scripted_llm.script(Rule(agrees, last_user="A reviewer claims"), Rule(json.dumps(findings), last_user="def mean"),
                        Rule('{"findings": []}'))
    snapshot = snapshot_of()
    units = tuple(code_units(snapshot))
    result = await team.review(ReviewRequest(snapshot, units))
    assert result.ok and len(scripted_llm.completions) == 3, "two reviews and one challenge"
    (finding,) = result.findings
    assert snapshot.source[finding.start_byte:finding.end_byte] == b"return total / len(xs) - 1"
    assert finding.severity == "info" and finding.unit_name == "mean", "agreed, not run: Information"
    again = await team.review(ReviewRequest(snapshot_of(version=8), units))
    assert len(scripted_llm.completions) == 3, "unchanged units are not sent again"
    assert [f.message for f in again.findings] == [finding.message]
    assert finding.message.startswith("Off by one: subtracts 1. (review and diagnosis agree")


async def test_a_review_deadline_keeps_the_units_already_reviewed(llm_client, scripted_llm):
    scripted_llm.script(Rule('{"findings": []}', last_user="def mean"), Rule(fault="hang"))
    snapshot = snapshot_of()
    async with Team(llm_client, deadline_s=1.0) as team:
        result = await team.review(ReviewRequest(snapshot, tuple(code_units(snapshot))))
    assert not result.ok and "1 of 2 unit(s) reviewed" in result.reason and "ran out of time" in result.reason
