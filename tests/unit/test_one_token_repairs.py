"""One-token repairs: the variants listed from the tree, run against the examples in one sandbox process, and the
team proposing one when every candidate of the first round failed the examples — against the scripted
OpenAI-compatible server over real HTTP."""

from __future__ import annotations

import json

import tree_sitter
import tree_sitter_python

from metagpt_lsp.agents.edits.examples import examples_for
from metagpt_lsp.agents.edits.one_token_edits import TokenEdit, one_token_edits
from metagpt_lsp.agents.edits.variant_trials import try_variants
from metagpt_lsp.agents.syntax.code_units import code_units
from metagpt_lsp.agents.syntax.snapshot import DocumentSnapshot
from metagpt_lsp.agents.team.coordinator import Team
from metagpt_lsp.agents.team.payloads import FixRequest, ReviewRequest, TeamResult
from metagpt_lsp.testing.scripted_llm import Rule

MODULE = '''import math


def count_positive(values):
    """How many values are above zero.

    >>> count_positive([1, -2, 3])
    2
    >>> count_positive([0, 0])
    0
    """
    total = 0
    for value in values:
        if value >= 0:
            total += 1
    return total


def untouched(a, b):
    return math.floor(a - b)
'''
PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_python.language()))


def edits_of(source: str, name: str, suspect: tuple[int, int] | None = None) -> list[TokenEdit]:
    tree = PARSER.parse(source.encode())
    (function,) = [node for node in tree.root_node.children if node.type == "function_definition"
                   and node.child_by_field_name("name").text.decode() == name]
    return one_token_edits(source.encode(), function, suspect)


def applied(source: str, edit: TokenEdit) -> str:
    data = source.encode()
    return (data[:edit.start_byte] + edit.new_text.encode() + data[edit.end_byte:]).decode()


def test_the_variants_are_small_changes_inside_the_function_only():
    edits = edits_of(MODULE, "count_positive")
    whats = [edit.what for edit in edits]
    assert "`>=` -> `>` on line 14" in whats and "`0` -> `1` on line 14" in whats
    assert "`+=` -> `-=` on line 15" in whats and "`value` -> `total` on line 14" in whats
    assert "condition negated on line 14" in whats
    body_start = MODULE.index("    total = 0")
    assert all(body_start <= edit.start_byte < MODULE.index("def untouched") for edit in edits)
    swapped = [e.what for e in edits_of(MODULE, "untouched")]
    assert "operands of `-` swapped on line 20" in swapped
    assert not any("`math`" in what or "`floor`" in what for what in swapped), "a called name is not a variable"


def test_variants_come_nearest_first_to_the_suspect_lines():
    on_return = edits_of(MODULE, "count_positive", suspect=(15, 15))  # 0-based: `return total`
    assert "line 16" in on_return[0].what
    on_condition = edits_of(MODULE, "count_positive", suspect=(13, 13))
    assert on_condition[0].what == "`>=` -> `<` on line 14", "operators first on the suspect line"


async def test_one_sandbox_run_finds_the_variants_that_pass_and_says_the_examples_show_the_bug():
    edits = edits_of(MODULE, "count_positive", suspect=(13, 13))
    examples = examples_for(MODULE, "count_positive")
    trials = await try_variants(MODULE, edits, examples, stop_after=10)
    assert trials.shows_bug
    passing = {edits[index].what for index in trials.passing}
    assert "`>=` -> `>` on line 14" in passing and "`>=` -> `<` on line 14" not in passing
    assert trials.tried == len(edits)


async def test_an_endless_loop_or_a_dying_process_costs_one_variant_not_the_run():
    source = "def f(x):\n    \"\"\"\n    >>> f(2)\n    3\n    \"\"\"\n    return x\n"
    body = source.index("return x")
    loop = TokenEdit(body, body + len("return x"), "while True:\n        pass", "endless loop")
    death = TokenEdit(body, body + len("return x"), "import os; os._exit(3)", "process exits")
    right = TokenEdit(body, body + len("return x"), "return x + 1", "right")
    examples = examples_for(source, "f")
    trials = await try_variants(source, [loop, death, right], examples, per_variant_s=2.0, budget_s=120.0)
    assert trials.shows_bug and trials.passing == (2,) and trials.tried == 3


async def test_examples_the_unchanged_function_passes_cannot_choose_a_repair():
    fixed = MODULE.replace("value >= 0", "value > 0")
    edits = edits_of(fixed, "count_positive")
    trials = await try_variants(fixed, edits, examples_for(fixed, "count_positive"))
    assert not trials.shows_bug


# -- the team ------------------------------------------------------------------------------------------------------

EXPLAIN = json.dumps({"cause": "zero is counted as positive.", "line": "if value >= 0:"})
WRONG = MODULE.split("\n\n\n")[1].replace("value >= 0", "value <= 0")


def fix_request(text: str, run_code: bool) -> FixRequest:
    snapshot = DocumentSnapshot.open("file:///tmp/count_positive.py", 5, text, "python")
    start = text.index("count_positive")
    return FixRequest(snapshot, start, start + len("count_positive"), "fails its tests", "pytest",
                      run_code=run_code)


async def test_when_the_candidate_fails_its_examples_a_one_token_repair_that_passes_is_offered(make_llm_client,
                                                                                                scripted_llm):
    scripted_llm.script(Rule(EXPLAIN, last_user="What causes it"), Rule(f"```python\n{WRONG}\n```"))
    async with Team(make_llm_client(), deadline_s=60) as team:
        result = await team.explain_and_fix(fix_request(MODULE, run_code=True))
    assert result.ok, result.reason
    assert [edit.new_text for edit in result.edits] == ["        if value > 0:\n"]
    assert "one-token repair passes its 2 example(s): `>=` -> `>` on line 14" in result.reason
    proposals = [r for r in scripted_llm.completions if "What causes it" not in r.last_user_message]
    assert len(proposals) == 1, "the search replaced further rounds of generation"
    assert "search_repair" in team.last_trace()


async def test_a_model_answering_the_unchanged_code_still_gets_the_repair_its_examples_show(make_llm_client,
                                                                                              scripted_llm):
    """The unchanged function fails its own example (diagnosis reproduced it): a candidate that changes nothing
    never ran the examples, yet the search runs, and the repair it finds settles the fix in the first round."""
    unchanged = MODULE.split("\n\n\n")[1]
    scripted_llm.script(Rule(EXPLAIN, last_user="What causes it"), Rule(f"```python\n{unchanged}\n```"))
    async with Team(make_llm_client(), deadline_s=60) as team:
        result = await team.explain_and_fix(fix_request(MODULE, run_code=True))
    assert result.ok and result.rounds == 1, result.reason
    assert [edit.new_text for edit in result.edits] == ["        if value > 0:\n"]
    assert len([r for r in scripted_llm.completions if "What causes it" not in r.last_user_message]) == 1


async def test_no_repair_is_searched_where_code_may_not_run(make_llm_client, scripted_llm):
    scripted_llm.script(Rule(EXPLAIN, last_user="What causes it"), Rule(f"```python\n{WRONG}\n```"))
    async with Team(make_llm_client(), deadline_s=60) as team:
        result = await team.explain_and_fix(fix_request(MODULE, run_code=False))
    assert "one-token" not in result.reason and "search_repair" not in team.last_trace()


async def test_examples_that_many_repairs_pass_choose_none_and_the_next_round_hears_them(make_llm_client, scripted_llm):
    weak = MODULE.replace("    >>> count_positive([1, -2, 3])\n    2\n", "")
    scripted_llm.script(Rule(EXPLAIN, last_user="What causes it"),
                        Rule(f"```python\n{WRONG}\n```".replace("    >>> count_positive([1, -2, 3])\n    2\n", "")))
    async with Team(make_llm_client(), deadline_s=60) as team:
        result = await team.explain_and_fix(fix_request(weak, run_code=True))
    assert not result.ok and result.edits == ()
    assert "search_repair" in team.last_trace()
    second = [r.last_user_message for r in scripted_llm.completions if "What causes it" not in r.last_user_message
              and "findings" not in r.last_user_message][1]
    assert "its examples pass after any one of these one-line changes" in second
    assert "`if value >= 0:` -> `if value > 0:`" in second, "the next round hears which changes pass"


# -- review: the function's own examples ---------------------------------------------------------------------------

async def review(make_llm_client, text: str, may_run_code: bool) -> TeamResult:
    snapshot = DocumentSnapshot.open("file:///tmp/count_positive.py", 2, text, "python")
    units = tuple(unit for unit in code_units(snapshot) if unit.name == "count_positive")
    async with Team(make_llm_client(), deadline_s=60) as team:
        return await team.review(ReviewRequest(snapshot, units, may_run_code))


async def test_a_failing_example_is_a_warning_on_the_line_a_repair_points_to_with_no_model_call(make_llm_client,
                                                                                                 scripted_llm):
    scripted_llm.script(Rule(json.dumps({"findings": []})))
    result = await review(make_llm_client, MODULE, may_run_code=True)
    (finding,) = result.findings
    assert finding.severity == "warning" and finding.quote == "if value >= 0:"
    assert "`count_positive([0, 0])` gives 2, its docstring says 0" in finding.message
    assert "with `>=` -> `>` on line 14 every example passes" in finding.message
    assert result.requests_sent == 1, "only review's own question; the examples cost no request"


async def test_examples_do_not_run_on_review_unless_code_may_run_and_passing_ones_say_nothing(make_llm_client,
                                                                                               scripted_llm):
    scripted_llm.script(Rule(json.dumps({"findings": []})))
    assert (await review(make_llm_client, MODULE, may_run_code=False)).findings == ()
    assert (await review(make_llm_client, MODULE.replace("value >= 0", "value > 0"), may_run_code=True)).findings == ()


async def test_an_example_that_raises_is_an_error(make_llm_client, scripted_llm):
    scripted_llm.script(Rule(json.dumps({"findings": []})))
    crashing = MODULE.replace("total += 1", "total += values[len(values)]")
    (finding,) = (await review(make_llm_client, crashing, may_run_code=True)).findings
    assert finding.severity == "error" and "raises IndexError" in finding.message
    assert finding.quote == "total += values[len(values)]", "it sits on the line that raised"
    assert "it raises on line 15" in finding.message


DISTINCT = '''def distinct(seq):
    """Whether no value repeats.

    >>> distinct([1, 2, 3])
    True
    >>> distinct([1, 2, 1])
    False
    """
    if iter(seq) is seq:
        seen = set()
        for item in seq:
            if item in seen:
                return False
            seen.add(item)
        return True
    return len(seq) != len(set(seq))
'''


async def test_of_the_repairs_that_pass_the_one_keeping_the_examples_on_their_path_comes_first():
    edits = edits_of(DISTINCT, "distinct")
    trials = await try_variants(DISTINCT, edits, examples_for(DISTINCT, "distinct"), stop_after=4)
    whats = [edits[index].what for index in trials.passing]
    assert whats[0] == "`is` -> `is not` on line 9", "in the list's order, the branch flip passes first"
    assert "`!=` -> `==` on line 16" in whats
    assert edits[trials.ranked()[0]].what == "`!=` -> `==` on line 16", (
        "flipping the branch sends the examples around the defect; the repair on their own path comes first")


async def test_review_places_the_finding_on_the_repair_that_keeps_the_examples_path(make_llm_client, scripted_llm):
    scripted_llm.script(Rule(json.dumps({"findings": []})))
    snapshot = DocumentSnapshot.open("file:///tmp/distinct.py", 1, DISTINCT, "python")
    async with Team(make_llm_client(), deadline_s=60) as team:
        result = await team.review(ReviewRequest(snapshot, tuple(code_units(snapshot)), True))
    (finding,) = result.findings
    assert finding.quote == "return len(seq) != len(set(seq))"
    assert "with `!=` -> `==` on line 16 every example passes" in finding.message
