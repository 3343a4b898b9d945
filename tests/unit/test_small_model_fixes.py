"""What the team does to get good fixes out of a small model, against the scripted OpenAI-compatible server: a guessed
cause is passed on as a lead (never as fact), the function is not sent twice, a reply that brings the file around
the function replaces only the function, and an unchanged answer is told that something must change."""

from __future__ import annotations

import json

import pytest

from metagpt_lsp.agents.syntax.problems import syntax_problems
from metagpt_lsp.agents.syntax.snapshot import DocumentSnapshot
from metagpt_lsp.agents.team.coordinator import Team
from metagpt_lsp.agents.team.payloads import FixRequest
from metagpt_lsp.testing.scripted_llm import Rule

BUGGY = '''import string


def to_base(num, b):
    result = ''
    alphabet = string.digits + string.ascii_uppercase
    while num > 0:
        i = num % b
        num = num // b
        result = result + alphabet[i]
    return result
'''
FIXED = BUGGY.replace("result = result + alphabet[i]", "result = alphabet[i] + result")
GUESS = json.dumps({"cause": "It does not handle num == 0.", "line": "result = result + alphabet[i]"})


def request(text: str = BUGGY, **options) -> FixRequest:
    snapshot = DocumentSnapshot.open("file:///tmp/to_base.py", 2, text, "python")
    start = snapshot.source.index(b"to_base")
    return FixRequest(snapshot, start, start + 7, "fails its tests", "pytest", **options)


def applied(fix: FixRequest, edits) -> str:
    data = fix.snapshot.source
    for edit in sorted(edits, key=lambda e: e.start_byte, reverse=True):
        data = data[:edit.start_byte] + edit.new_text.encode() + data[edit.end_byte:]
    return data.decode()


@pytest.fixture
async def team(llm_client):
    async with Team(llm_client, deadline_s=30) as team:
        yield team


async def test_a_guessed_cause_is_a_lead_and_the_whole_file_reply_replaces_only_the_function(llm_client,
                                                                                             scripted_llm):
    scripted_llm.script(Rule(GUESS, last_user="What causes it"),
                        Rule(f"Here it is:\n```python\n{FIXED}\nprint(to_base(31, 16))\n```", last_user="Rewrite"))
    fix = request()
    async with Team(llm_client, deadline_s=30, fix_candidates=2) as team:
        result = await team.explain_and_fix(fix)
    assert result.ok, result.reason
    assert applied(fix, result.edits) == FIXED, "the reply's import and usage line are not pasted into the file"
    unguided, led = (r.last_user_message for r in scripted_llm.completions if "Rewrite" in r.last_user_message)
    assert "suspects" not in unguided and "num == 0" not in unguided, "the first candidate has no lead at all"
    assert "suspects this line: `result = result + alphabet[i]`" in led and "may be elsewhere" in led
    assert "num == 0" not in led, "a guessed cause is not stated as fact"
    assert all(prompt.count("def to_base") == 1 for prompt in (unguided, led)), "the function is sent once"


async def test_a_known_cause_is_stated_as_the_cause(team, scripted_llm):
    scripted_llm.script(Rule(f"```python\n{FIXED}```", last_user="Rewrite"))
    fix = request(known_cause="The digits are appended in reverse order.")
    result = await team.explain_and_fix(fix)
    assert result.ok and applied(fix, result.edits) == FIXED
    assert len(scripted_llm.completions) == 1, "a known cause needs no diagnosis call"
    assert "The digits are appended in reverse order." in scripted_llm.completions[0].last_user_message


async def test_an_unchanged_answer_is_rejected_and_the_next_round_is_told_something_must_change(team, scripted_llm):
    scripted_llm.script(Rule(GUESS, last_user="What causes it"),
                        Rule(f"```python\n{BUGGY}```", last_user="Rewrite", times=1),
                        Rule(f"```python\n{FIXED}```", last_user="Rewrite"))
    result = await team.explain_and_fix(request())
    assert result.ok and result.rounds == 2
    second = scripted_llm.completions[-1]
    assert "identical to the current code" in second.last_user_message
    assert "something in it must change" in second.last_user_message
    assert second.body["temperature"] > 0, "a later round samples differently"


async def test_candidates_are_asked_differently_and_never_repeat_a_request(llm_client, scripted_llm):
    scripted_llm.script(Rule(GUESS.replace('"line": "result = result + alphabet[i]"', '"line": ""'),
                             last_user="What causes it"),
                        Rule(f"```python\n{FIXED}```", last_user="Rewrite"))
    async with Team(llm_client, deadline_s=30, fix_candidates=4) as team:
        result = await team.explain_and_fix(request())
        known = await team.explain_and_fix(request(known_cause="The digits come out reversed."))
    assert result.ok and known.ok
    asked = [(r.last_user_message, r.body["temperature"]) for r in scripted_llm.completions
             if "Rewrite" in r.last_user_message]
    assert len(asked) == 8 and len(set(asked)) == 8, "no candidate is a repeat (it would come from the reply cache)"
    guessed, stated = asked[:4], asked[4:]
    assert any("first look suggests" in prompt for prompt, _ in guessed), "the guessed cause is one candidate's lead"
    assert all("The digits come out reversed." in prompt for prompt, _ in stated)
    assert all("Cause: The digits come out reversed." in prompt for prompt, _ in stated[1:3])
    assert "Cause:" not in stated[0][0] and "Cause:" not in stated[3][0], "the unguided repairs, cool and warm"
    assert [temperature for _, temperature in stated] == [0.0, 0.0, 0.3, 0.5]


CLAMP = '''def is_palindrome(word):
    return word == word[::-1]


def clamp(value, low, high)
    """value limited to the range [low, high]."""
    return max(low, min(value, high))
'''


async def test_a_whole_function_answer_to_a_broken_header_does_not_repeat_the_body(team, scripted_llm):
    """The README's example: the syntax error's target is the header; the model answers with the whole function."""
    fixed = CLAMP.replace("def clamp(value, low, high)", "def clamp(value, low, high):")
    whole = fixed.split("\n\n\n")[1]
    scripted_llm.script(Rule(f"```python\n{whole}\n```", last_user="Rewrite"))
    snapshot = DocumentSnapshot.open("file:///tmp/clamp.py", 4, CLAMP, "python")
    (problem,) = syntax_problems(snapshot.tree, snapshot.source)
    fix = FixRequest(snapshot, problem.start_byte, problem.end_byte, problem.message, "metagpt-lsp", "syntax")
    result = await team.explain_and_fix(fix)
    assert result.ok, result.reason
    assert applied(fix, result.edits) == fixed


def test_a_reply_that_only_resembles_the_following_line_keeps_it():
    from metagpt_lsp.agents.edits.patches import without_repeated_context

    text = "def f(x):\n    x += 1\n    x += 1\n    return x\n"
    snapshot = DocumentSnapshot.open("file:///tmp/f.py", 1, text, "python")
    start = snapshot.source.index(b"x += 1")
    end = start + len("x += 1")
    assert without_repeated_context(snapshot, start, end, "x += 2\nx += 1") == "x += 2\nx += 1", "one line alike"
    assert without_repeated_context(snapshot, start, end, "x += 2\nx += 1\nreturn x") == "x += 2"
