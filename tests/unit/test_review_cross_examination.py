"""Review findings must survive cross-examination before they squiggle: review proposes, diagnosis is challenged
along review -> diagnosis, the claimed call runs in the sandbox where code may run, and the cooperation graph's
weights turn the votes into a confidence and so a severity. Against the scripted LLM over real HTTP."""

from __future__ import annotations

import json

import pytest

from metagpt_lsp.agents.syntax.code_units import code_units
from metagpt_lsp.agents.syntax.snapshot import DocumentSnapshot
from metagpt_lsp.agents.team import graph_from_settings
from metagpt_lsp.agents.team.coordinator import Team
from metagpt_lsp.agents.team.payloads import ReviewPolicy, ReviewRequest
from metagpt_lsp.agents.team.review_cache import ReviewCache
from metagpt_lsp.testing.scripted_llm import Rule

BUGGY = '''def mean(xs):
    """The average of xs: mean([2, 4]) == 3.0."""
    return sum(xs) / (len(xs) + 1)
'''
CRASHING = '''def first_word(text):
    """The first word of text, or "" when there is none."""
    return text.split()[0]
'''
BUGGY_LINE = "return sum(xs) / (len(xs) + 1)"
ASKS_REVIEW = "Review this code for bugs"
ASKS_CHALLENGE = "A reviewer claims this line is a bug"


def review_reply(quote: str = BUGGY_LINE, problem: str = "divides by one more than the count") -> str:
    return json.dumps({"findings": [{"quote": quote, "problem": problem, "severity": "error"}]})


def claim(real: bool = True, args: str = "[2, 4]", expected: str = "3.0", actual: str = "2.0",
          name: str = "mean") -> str:
    return json.dumps({"call": f"{name}({args})", "expected": expected, "actual": actual, "real": real})


def request(text: str = BUGGY, may_run_code: bool = False, policy: ReviewPolicy | None = None) -> ReviewRequest:
    snapshot = DocumentSnapshot.open("file:///tmp/stats.py", 3, text, "python")
    return ReviewRequest(snapshot, tuple(code_units(snapshot)), may_run_code, policy or ReviewPolicy())


@pytest.fixture
async def make_team(llm_client, tmp_path):
    teams: list[Team] = []

    def make(graph: dict | None = None) -> Team:
        team = Team(llm_client, graph_from_settings(graph) if graph else None,
                    ReviewCache(tmp_path / f"cache{len(teams)}.sqlite3"), deadline_s=20)
        teams.append(team)
        return team

    yield make
    for team in teams:
        await team.close()


def challenge_prompts(scripted_llm) -> list[str]:
    return [r.last_user_message for r in scripted_llm.completions if ASKS_CHALLENGE in r.last_user_message]


async def test_a_finding_the_challenge_rejects_is_not_published(make_team, scripted_llm):
    scripted_llm.script(Rule(review_reply(), last_user=ASKS_REVIEW),
                        Rule(claim(real=False, actual="3.0"), last_user=ASKS_CHALLENGE))
    team = make_team()
    result = await team.review(request())
    assert result.ok, result.reason
    assert result.findings == ()
    (asked,) = challenge_prompts(scripted_llm)
    assert BUGGY_LINE in asked and "divides by one more than the count" in asked
    trace = team.last_trace()
    assert "review -> subtask.challenge => diagnosis" in trace, "the challenge travels the graph's edge"
    assert "dropped: diagnosis rejects it" in trace


async def test_a_finding_nobody_could_challenge_is_not_published(make_team, scripted_llm):
    scripted_llm.script(Rule(review_reply(), last_user=ASKS_REVIEW), Rule("I think so.", last_user=ASKS_CHALLENGE))
    result = await make_team().review(request())
    assert result.findings == ()


async def test_a_finding_confirmed_by_execution_is_a_warning_with_its_evidence(make_team, scripted_llm):
    scripted_llm.script(Rule(review_reply(), last_user=ASKS_REVIEW), Rule(claim(), last_user=ASKS_CHALLENGE))
    result = await make_team().review(request(may_run_code=True))
    (finding,) = result.findings
    assert finding.severity == "warning", finding
    assert finding.execution is not None and finding.execution.verdict == "confirmed"
    assert finding.execution.value == "2.0"
    assert "`mean([2, 4])` returns 2.0, expected 3.0" in finding.message
    assert finding.message.startswith("divides by one more than the count")
    assert finding.confidence == pytest.approx(1 - 0.4 * 0.3)


async def test_a_crash_confirmed_by_execution_is_an_error(make_team, scripted_llm):
    scripted_llm.script(Rule(review_reply("return text.split()[0]", "fails on a blank string"), last_user=ASKS_REVIEW),
                        Rule(claim(args="'   '", expected="''", actual="IndexError", name="first_word"),
                             last_user=ASKS_CHALLENGE))
    (finding,) = (await make_team().review(request(CRASHING, may_run_code=True))).findings
    assert finding.severity == "error"
    assert "`first_word('   ')` raises IndexError" in finding.message


async def test_a_claim_that_running_refutes_is_dropped(make_team, scripted_llm):
    correct = BUGGY.replace("(len(xs) + 1)", "len(xs)")
    scripted_llm.script(Rule(review_reply("return sum(xs) / len(xs)", "wrong average"), last_user=ASKS_REVIEW),
                        Rule(claim(actual="2.0"), last_user=ASKS_CHALLENGE))
    result = await make_team().review(request(correct, may_run_code=True))
    assert result.findings == ()


async def test_a_claimed_call_the_function_cannot_take_drops_the_finding(make_team, scripted_llm):
    scripted_llm.script(Rule(review_reply(), last_user=ASKS_REVIEW),
                        Rule(claim(args="[2, 4], 1"), last_user=ASKS_CHALLENGE))
    team = make_team()
    result = await team.review(request(may_run_code=True))
    assert result.findings == ()
    assert "dropped: the claimed call does not fit the function (TypeError: too many positional" in team.last_trace()


async def test_agreement_whose_own_call_gives_the_expected_result_is_no_agreement(make_team, scripted_llm):
    scripted_llm.script(Rule(review_reply(), last_user=ASKS_REVIEW),
                        Rule(claim(expected="3.0", actual="3.0"), last_user=ASKS_CHALLENGE))
    team = make_team()
    result = await team.review(request(may_run_code=False))
    assert result.findings == ()
    assert "diagnosis's own call gives what is expected (3.0): it shows no defect" in team.last_trace()


async def test_agreement_without_execution_is_information(make_team, scripted_llm):
    scripted_llm.script(Rule(review_reply(), last_user=ASKS_REVIEW), Rule(claim(), last_user=ASKS_CHALLENGE))
    result = await make_team().review(request(may_run_code=False))
    (finding,) = result.findings
    assert finding.severity == "info" and finding.execution is None
    assert "review and diagnosis agree" in finding.message and "(not run)" in finding.message


async def test_changing_an_edge_weight_changes_the_decision(make_team, scripted_llm):
    scripted_llm.script(Rule(review_reply(), last_user=ASKS_REVIEW), Rule(claim(), last_user=ASKS_CHALLENGE))
    default = await make_team().review(request())
    weaker = await make_team({"edges": [{"from": "diagnosis", "to": "review", "weight": 0.4}]}).review(request())
    assert [f.severity for f in default.findings] == ["info"]  # 1 - 0.4 * 0.3 = 0.88 >= 0.8
    assert weaker.findings == ()  # 1 - 0.4 * 0.6 = 0.76 < 0.8: the same votes no longer carry it


async def test_a_review_edge_weighted_above_diagnosis_overrules_its_rejection(make_team, scripted_llm):
    scripted_llm.script(Rule(review_reply(), last_user=ASKS_REVIEW),
                        Rule(claim(real=False), last_user=ASKS_CHALLENGE))
    trusted = {"edges": [{"from": "review", "to": "diagnosis", "weight": 0.85}]}
    overruled = await make_team(trusted).review(request(policy=ReviewPolicy(unconfirmed="drop")))
    assert [(f.severity, f.confidence) for f in overruled.findings] == [("info", 0.85)]


async def test_unconfirmed_findings_become_hints_by_setting(make_team, scripted_llm):
    scripted_llm.script(Rule(review_reply(), last_user=ASKS_REVIEW),
                        Rule(claim(real=False), last_user=ASKS_CHALLENGE))
    result = await make_team().review(request(policy=ReviewPolicy(unconfirmed="hint")))
    assert [f.severity for f in result.findings] == ["hint"]


async def test_one_unit_costs_one_to_three_requests_and_none_when_unchanged(make_team, scripted_llm):
    many = json.dumps({"findings": [
        {"quote": BUGGY_LINE, "problem": "off by one", "severity": "error"},
        {"quote": "def mean(xs):", "problem": "no type hints", "severity": "warning"},
        {"quote": '"""The average of xs: mean([2, 4]) == 3.0."""', "problem": "docstring", "severity": "info"},
    ]})
    scripted_llm.script(Rule(many, last_user=ASKS_REVIEW), Rule(claim(), last_user=ASKS_CHALLENGE))
    team = make_team()
    first = await team.review(request())
    assert 1 <= first.requests_sent <= 3 and len(scripted_llm.completions) == 3
    again = await team.review(request(may_run_code=True))
    assert again.requests_sent == 0 and len(scripted_llm.completions) == 3, "an unchanged unit sent a request"
    assert "warning" in [f.severity for f in again.findings], "a cached claim runs once code may run"


async def test_the_broker_enforces_the_challenge_round_bound(make_team, scripted_llm):
    two = "def a(x):\n    return x + 1\n\n\ndef b(x):\n    return x + 2\n"
    scripted_llm.script(Rule(json.dumps({"findings": [{"quote": "return x + 1", "problem": "p"}]}),
                             last_user=f"{ASKS_REVIEW}(?s:.*)def a"),
                        Rule(json.dumps({"findings": [{"quote": "return x + 2", "problem": "p"}]}),
                             last_user=f"{ASKS_REVIEW}(?s:.*)def b"),
                        Rule(claim(args="1", expected="1", actual="2"), last_user=ASKS_CHALLENGE))
    team = make_team({"maxRounds": 1})
    result = await team.review(request(two))
    assert len(challenge_prompts(scripted_llm)) == 1, "the second challenge exceeded the bound and was refused"
    assert len(result.findings) == 1


def test_diagnosis_names_the_call_whole_and_only_its_literal_arguments_are_kept():
    from metagpt_lsp.agents.team.diagnosis_agent import claim_from

    answer = {"expected": "3.0", "actual": "2.0", "real": True}
    assert claim_from({**answer, "call": "mean([2, 4], weights=(1, 1))"}).args == "[2, 4], weights=(1, 1)"
    assert claim_from({**answer, "call": "mean([2, 4]) == 3.0"}).args == "[2, 4]", "the call compared is the call"
    assert claim_from({**answer, "call": "mean"}).args == "", "not a call: nothing to run"


async def test_the_challenge_asks_for_a_call_of_the_function_under_review(make_team, scripted_llm):
    scripted_llm.script(Rule(review_reply(), last_user=ASKS_REVIEW), Rule(claim(), last_user=ASKS_CHALLENGE))
    await make_team().review(request())
    (asked,) = challenge_prompts(scripted_llm)
    assert "one concrete call of mean" in asked and "mean(...) with literal arguments" in asked
    assert "[2, 4], 1" not in asked, "no example arguments to copy whatever the signature"
