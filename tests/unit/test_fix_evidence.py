"""Fixes chosen by evidence, never worse than one call, against the scripted OpenAI-compatible server: the unguided
whole-unit repair is always among the candidates; diagnosis writes examples as data where code may run; a candidate
that fails one goes back to generation with what it gave; a wrong written example never withholds the only fix; and
nothing runs where the user did not allow it."""

from __future__ import annotations

import json

from metagpt_lsp.agents.syntax.snapshot import DocumentSnapshot
from metagpt_lsp.agents.team.coordinator import Team
from metagpt_lsp.agents.team.payloads import FixRequest
from metagpt_lsp.agents.team.written_examples import parse_examples
from metagpt_lsp.server.settings import may_run_code, parse_settings
from metagpt_lsp.testing.scripted_llm import Rule

BUGGY = '''def mean(xs):
    """The average of xs."""
    total = 0
    for x in xs:
        total += x
    return total / len(xs) - 1
'''
RIGHT = BUGGY.replace("return total / len(xs) - 1", "return total / len(xs)")
WRONG = BUGGY.replace("return total / len(xs) - 1", "return total / (len(xs) - 1)")
EXAMPLES = [{"call": "mean([2, 4])", "returns": "3.0"}, {"call": "mean([5])", "returns": "5.0"}]


def explain(examples: list[dict] | None = None, line: str = "total += x") -> str:
    answer: dict = {"cause": "The loop adds the wrong thing.", "line": line}
    if examples is not None:
        answer["examples"] = examples
    return json.dumps(answer)


def fix_request(run_code: bool | None) -> FixRequest:
    snapshot = DocumentSnapshot.open("file:///tmp/stats.py", 3, BUGGY, "python")
    start = snapshot.source.index(b"mean")
    return FixRequest(snapshot, start, start + 4, "fails its tests", "pytest", run_code=run_code)


def fixed_text(request: FixRequest, edits) -> str:
    data = request.snapshot.source
    for edit in sorted(edits, key=lambda e: e.start_byte, reverse=True):
        data = data[:edit.start_byte] + edit.new_text.encode() + data[edit.end_byte:]
    return data.decode()


def proposals(scripted_llm) -> list[str]:
    return [r.last_user_message for r in scripted_llm.completions if "Rewrite" in r.last_user_message]


async def test_the_unguided_whole_unit_repair_is_always_a_candidate(make_llm_client, scripted_llm):
    """Diagnosis points at the wrong line; the unguided repair does not hear it and may change any line."""
    scripted_llm.script(Rule(explain(line="total = 0"), last_user="What causes it"),
                        Rule(f"```python\n{RIGHT}```", last_user="complete fixed function `mean`"),
                        Rule(f"```python\n{WRONG}```", last_user="Rewrite"))
    for candidates in (1, 3):
        before = len(proposals(scripted_llm))
        request = fix_request(run_code=False)
        async with Team(make_llm_client(), deadline_s=30, fix_candidates=candidates) as team:
            result = await team.explain_and_fix(request)
        assert result.ok, result.reason
        asked = proposals(scripted_llm)[before:]
        assert len(asked) == candidates
        unguided = asked[0]
        assert "complete fixed function `mean`" in unguided
        assert "total = 0" not in unguided.split("Problem in")[1], "the guessed line is not a constraint on it"
        assert "The loop adds" not in unguided, "nor is the guessed cause"
        if candidates == 1:
            assert fixed_text(request, result.edits) == RIGHT, "the only candidate is the unguided one"


async def test_examples_are_asked_as_data_only_where_code_may_run(make_llm_client, scripted_llm):
    scripted_llm.script(Rule(explain(EXAMPLES), last_user="What causes it"),
                        Rule(f"```python\n{RIGHT}```", last_user="Rewrite"))
    async with Team(make_llm_client(), deadline_s=30) as team:
        await team.explain_and_fix(fix_request(run_code=False))
        result = await team.explain_and_fix(fix_request(run_code=True))
    asked = [r.last_user_message for r in scripted_llm.completions if "What causes it" in r.last_user_message]
    assert "examples" not in asked[0]
    assert "only literal arguments" in asked[1]
    assert result.ok and "2 of 2 written example(s) pass" in result.reason


async def test_a_candidate_failing_a_written_example_goes_back_with_what_it_gave(make_llm_client, scripted_llm):
    scripted_llm.script(Rule(explain(EXAMPLES), last_user="What causes it"),
                        Rule(f"```python\n{WRONG}```", last_user="Rewrite", times=1),
                        Rule(f"```python\n{RIGHT}```", last_user="Rewrite"))
    request = fix_request(run_code=True)
    async with Team(make_llm_client(), deadline_s=30) as team:
        result = await team.explain_and_fix(request)
    assert result.ok and result.rounds == 2, result.reason
    assert fixed_text(request, result.edits) == RIGHT
    second = proposals(scripted_llm)[1]
    assert "mean([2, 4]) returns 6.0, expected 3.0" in second, "the next round hears what the candidate gave"


async def test_a_wrong_written_example_never_withholds_the_fix(make_llm_client, scripted_llm):
    """The model wrote a wrong expected value: every candidate fails it, and the fix is still offered (the best by
    evidence, then agreement) — never worse than the one direct call."""
    wrong_example = [{"call": "mean([2, 4])", "returns": "4.0"}]
    scripted_llm.script(Rule(explain(wrong_example), last_user="What causes it"),
                        Rule(f"```python\n{RIGHT}```", last_user="Rewrite"))
    request = fix_request(run_code=True)
    async with Team(make_llm_client(), deadline_s=30) as team:
        result = await team.explain_and_fix(request)
    assert result.ok, result.reason
    assert fixed_text(request, result.edits) == RIGHT
    assert "mean([2, 4]) returns 3.0, expected 4.0" in result.reason


async def test_nothing_runs_when_the_request_does_not_allow_it(make_llm_client, scripted_llm, tmp_path):
    marker = tmp_path / "ran"
    module = BUGGY + f"\n\nopen({str(marker)!r}, 'w').close()\n"
    scripted_llm.script(Rule(explain(EXAMPLES), last_user="What causes it"),
                        Rule(f"```python\n{RIGHT}```", last_user="Rewrite"))
    snapshot = DocumentSnapshot.open("file:///tmp/stats.py", 3, module, "python")
    start = snapshot.source.index(b"mean")
    async with Team(make_llm_client(), deadline_s=30, run_doctests=True) as team:
        result = await team.explain_and_fix(FixRequest(snapshot, start, start + 4, "fails its tests", "pytest",
                                                       run_code=False))
    assert result.ok and not marker.exists(), "run_code=False wins over the team's default"


WITH_EXAMPLE = '"""The average of xs.\n\n    >>> mean([2, 4])\n    3.0\n    """'
DOCUMENTED = BUGGY.replace('"""The average of xs."""', WITH_EXAMPLE)
DOCUMENTED_RIGHT = RIGHT.replace('"""The average of xs."""', WITH_EXAMPLE)


async def test_diagnosis_reproduces_the_bug_with_the_functions_own_example_and_writes_none(make_llm_client,
                                                                                           scripted_llm):
    """Where code may run, diagnosis is shown the function's own failing example as evidence and asked for no
    examples of its own (a written one is often wrong): a candidate passing the user's examples settles the fix."""
    scripted_llm.script(Rule(explain(EXAMPLES), last_user="What causes it"),
                        Rule(f"```python\n{DOCUMENTED_RIGHT}```", last_user="Rewrite"))
    for run_code in (False, True):
        snapshot = DocumentSnapshot.open("file:///tmp/stats.py", 3, DOCUMENTED, "python")
        start = snapshot.source.index(b"mean")
        async with Team(make_llm_client(), deadline_s=30) as team:
            result = await team.explain_and_fix(FixRequest(snapshot, start, start + 4, "fails its tests", "pytest",
                                                           run_code=run_code))
        asked = [r.last_user_message for r in scripted_llm.completions if "What causes it" in r.last_user_message]
        reproduced = "`mean([2, 4])` gives 2.0, its docstring says 3.0"
        assert result.ok and result.rounds == 1, result.reason
        if run_code:
            assert f"Running its own example: {reproduced}" in asked[-1] and "only literal arguments" not in asked[-1]
            assert "its 1 example(s) pass" in result.reason and "written" not in result.reason
            assert "chose round 1, unguided: " in team.last_trace(), "the trace says which candidate won"
            assert result.explanation.endswith(f"(Seen: {reproduced}.)"), "the user sees the evidence too"
        else:
            assert "Running its own example" not in asked[-1], "nothing runs where the request does not allow it"


async def test_consecutive_questions_about_a_function_begin_alike_so_the_model_server_reads_them_once(
        make_llm_client, scripted_llm):
    """Diagnosis's question and each round of generation start with the same system message and the same code: a
    llama.cpp server reuses what they share instead of reading it again (the prompt is most of the time on a CPU)."""
    scripted_llm.script(Rule(explain(EXAMPLES), last_user="What causes it"),
                        Rule(f"```python\n{WRONG}```", last_user="Rewrite", times=1),
                        Rule(f"```python\n{RIGHT}```", last_user="Rewrite"))
    async with Team(make_llm_client(), deadline_s=30) as team:
        await team.explain_and_fix(fix_request(run_code=True))
    asked = [r.body["messages"] for r in scripted_llm.completions]
    assert len(asked) >= 3
    assert all(messages[0] == asked[0][0] for messages in asked), "one system message for every agent"
    firsts = [messages[-1]["content"] for messages in asked]
    shared = firsts[0][:firsts[0].index("You are the team's diagnosis agent")]
    assert "def mean(xs):" in shared
    assert all(first.startswith(shared) for first in firsts), "every question starts with the same code"


async def test_a_model_that_repeats_itself_gets_no_further_round(make_llm_client, scripted_llm):
    """The model answers the unchanged code twice: a third round would cost a call for the same answer."""
    scripted_llm.script(Rule(explain(), last_user="What causes it"),
                        Rule(f"```python\n{BUGGY}```", last_user="Rewrite"))
    async with Team(make_llm_client(), deadline_s=30) as team:
        assert team.graph.max_rounds("generation", "review") == 3
        result = await team.explain_and_fix(fix_request(run_code=False))
    assert not result.ok and result.edits == ()
    assert len(proposals(scripted_llm)) == 2
    assert "identical to the current code (round 2 repeated code already tried)" in result.reason


def test_written_examples_are_literal_calls_of_the_function_only():
    raw = [{"call": "mean([2, 4])", "returns": "3.0"}, {"call": "mean(__import__('os').getcwd())", "returns": "1"},
           {"call": "other(1)", "returns": "1"}, {"call": "mean(xs=[1])", "returns": 1.0}]
    examples = parse_examples(raw, "mean")
    assert [(e.args, e.expected) for e in examples] == [("[2, 4]", "3.0")]
    assert parse_examples([{"call": "mean(xs=[1])", "returns": 1.0}], "mean")[0].args == "xs=[1]"
    assert parse_examples("not a list", "mean") == ()


def test_when_code_may_run():
    def settings(**raw):
        return parse_settings(raw)[0]

    default = settings()
    assert may_run_code(default, on_save=False), "an explicit request (a fix) runs examples by default"
    assert not may_run_code(default, on_save=True), "on save: not unless allowed"
    assert not may_run_code(settings(team={"runCode": "onSaveToo"}), on_save=True), "nor unless the client trusts"
    trusted = settings(team={"runCode": "onSaveToo"}, workspaceTrusted=True)
    assert may_run_code(trusted, on_save=True) and may_run_code(trusted, on_save=False)
    untrusted = settings(team={"runCode": "onSaveToo"}, workspaceTrusted=False)
    assert not may_run_code(untrusted, on_save=True) and not may_run_code(untrusted, on_save=False)
    never = settings(team={"runCode": "never"}, workspaceTrusted=True)
    assert not may_run_code(never, on_save=False)
    bad, problems = parse_settings({"team": {"runCode": "always"}})
    assert bad.team.run_code == "onRequest" and "team.runCode" in str(problems[0])
