"""Where review puts a failing own example that no one-token repair explains: review asks generation for the function
repaired (review -> generation, ``subtask.propose_fix``), runs the examples on the answer, and — when every example
passes and the repair is a few lines — puts the finding on the first line it changes. Against the scripted
OpenAI-compatible server over real HTTP, with the real sandbox and a real review cache."""

from __future__ import annotations

import json

from metagpt_lsp.agents.syntax.code_units import code_units
from metagpt_lsp.agents.syntax.snapshot import DocumentSnapshot
from metagpt_lsp.agents.team.cooperation import CooperationGraph
from metagpt_lsp.agents.team.coordinator import Team
from metagpt_lsp.agents.team.graph_settings import graph_from_settings
from metagpt_lsp.agents.team.payloads import ReviewRequest, TeamResult
from metagpt_lsp.agents.team.review_cache import ReviewCache
from metagpt_lsp.testing.scripted_llm import Rule

MODULE = '''def shout(words):
    """The words upper-cased, joined by spaces.

    >>> shout(["hi", "there"])
    'HI THERE'
    """
    joined = " ".join(words)
    return joined
'''
REPAIRED = '''```python
def shout(words):
    """The words upper-cased, joined by spaces.

    >>> shout(["hi", "there"])
    'HI THERE'
    """
    joined = " ".join(words)
    return joined.upper()  # the words were not upper-cased
```'''
STILL_WRONG = REPAIRED.replace("joined.upper()", "joined.title()")
NO_FINDINGS = Rule(json.dumps({"findings": []}), last_user="findings")


async def review(make_llm_client, cache: ReviewCache | None = None,
                 graph: CooperationGraph | None = None) -> tuple[TeamResult, str]:
    snapshot = DocumentSnapshot.open("file:///tmp/shout.py", 2, MODULE, "python")
    units = tuple(code_units(snapshot))
    async with Team(make_llm_client(), graph=graph, review_cache=cache, deadline_s=60) as team:
        result = await team.review(ReviewRequest(snapshot, units, may_run_code=True))
        return result, team.last_trace()


async def test_a_checked_repair_puts_the_finding_on_the_line_it_changes_once_per_content(make_llm_client, scripted_llm,
                                                                                        tmp_path):
    scripted_llm.script(NO_FINDINGS, Rule(REPAIRED, last_user="Rewrite this code"))
    cache = ReviewCache(tmp_path / "review.sqlite3")
    result, trace = await review(make_llm_client, cache)
    (finding,) = result.findings
    assert finding.severity == "warning" and finding.quote == "return joined"
    assert "with `return joined.upper()` on line 8 every example passes" in finding.message, "named without its comment"
    assert "`shout([\"hi\", \"there\"])` gives 'hi there', its docstring says 'HI THERE'" in finding.message
    assert "review -> subtask.propose_fix" in trace, "the repair travels the graph's review -> generation edge"
    assert result.requests_sent == 2, "review's question and one repair"
    again, _ = await review(make_llm_client, cache)
    assert again.findings == result.findings and again.requests_sent == 0, "unchanged: nothing is asked again"


async def test_a_repair_that_fails_the_examples_locates_nothing(make_llm_client, scripted_llm, tmp_path):
    scripted_llm.script(NO_FINDINGS, Rule(STILL_WRONG, last_user="Rewrite this code"))
    cache = ReviewCache(tmp_path / "review.sqlite3")
    result, _ = await review(make_llm_client, cache)
    (finding,) = result.findings
    assert finding.quote == "shout" and finding.message.startswith("shout fails its own example")
    assert "every example passes" not in finding.message
    again, _ = await review(make_llm_client, cache)
    assert again.requests_sent == 0, "the answer that located nothing is remembered too"


async def test_without_the_edge_review_asks_no_repair_and_the_finding_stays_on_the_name(make_llm_client,
                                                                                       scripted_llm):
    scripted_llm.script(NO_FINDINGS, Rule(REPAIRED, last_user="Rewrite this code"))
    graph = graph_from_settings({"edges": [{"from": "review", "to": "generation", "kinds": ["reject"]}]})
    result, trace = await review(make_llm_client, graph=graph)
    (finding,) = result.findings
    assert finding.quote == "shout" and result.requests_sent == 1
    assert "subtask.propose_fix" not in trace


async def test_a_model_that_fails_leaves_the_finding_where_the_examples_put_it(make_llm_client, scripted_llm):
    scripted_llm.script(NO_FINDINGS, Rule(fault="500", last_user="Rewrite this code"))
    result, _ = await review(make_llm_client)
    (finding,) = result.findings
    assert finding.quote == "shout" and finding.severity == "warning"
    assert result.ok, "the review itself is complete"


async def test_a_unit_whose_repair_was_asked_has_one_finding_challenged_so_at_most_three_requests(make_llm_client,
                                                                                                  scripted_llm):
    two = {"findings": [{"quote": 'joined = " ".join(words)', "problem": "joins with spaces", "severity": "warning"},
                        {"quote": "return joined", "problem": "not upper-cased", "severity": "warning"}]}
    challenge = {"call": 'shout(["a"])', "expected": "'A'", "actual": "'a'", "real": True}
    scripted_llm.script(Rule(json.dumps(two), last_user="findings"), Rule(json.dumps(challenge), last_user="claims"),
                        Rule(REPAIRED, last_user="Rewrite this code"))
    result, _ = await review(make_llm_client)
    assert result.requests_sent == 3, "review's question, one repair, one challenge"
    assert any("every example passes" in f.message for f in result.findings)
