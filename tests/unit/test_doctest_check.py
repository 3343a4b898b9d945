"""A fix checked by the function's own examples (opt-in ``team.runDoctests``): examples found next to the function,
run on the patched module in a subprocess with a timeout; and the team choosing among several candidate fixes —
against the scripted OpenAI-compatible server over real HTTP."""

from __future__ import annotations

import json
import time

from metagpt_lsp.agents.edits.examples import examples_for, run_examples
from metagpt_lsp.agents.syntax.snapshot import DocumentSnapshot
from metagpt_lsp.agents.team.coordinator import Team
from metagpt_lsp.agents.team.payloads import FixRequest
from metagpt_lsp.testing.scripted_llm import Rule

MODULE = '''def lis(arr):
    ends = {}
    longest = 0
    for i, val in enumerate(arr):
        prefix_lengths = [j for j in range(1, longest + 1) if arr[ends[j]] < val]
        length = max(prefix_lengths) if prefix_lengths else 0
        if length == longest or val < arr[ends[length + 1]]:
            ends[length + 1] = i
            longest = max(longest, length + 1)
    return longest


"""
Longest Increasing Subsequence

Example:
    >>> lis([4, 1, 5, 3, 7, 6, 2])
    3
    >>> lis([])
    0
    >>> lis(electron)
    2
    >>> sorted([3, 1])
    [1, 3]
"""
'''
BUGGY = MODULE.replace("longest = max(longest, length + 1)", "longest = length + 1")


def test_examples_are_those_that_call_the_function_and_can_run():
    sources = [example.source.strip() for example in examples_for(MODULE, "lis")]
    assert sources == ["lis([4, 1, 5, 3, 7, 6, 2])", "lis([])"], "prose (an undefined name) and other calls are left"
    assert examples_for("def f(:\n", "f") == []


async def test_a_correct_module_passes_and_a_wrong_one_fails_with_what_it_gave():
    passed = await run_examples(MODULE, "lis")
    assert passed.passed and passed.examples == 2
    failed = await run_examples(BUGGY, "lis")
    assert failed.failed
    assert "lis([4, 1, 5, 3, 7, 6, 2]) gave '2', expected '3'" in failed.summary


async def test_output_that_differs_only_in_spacing_of_a_literal_still_passes():
    module = 'def pair():\n    """\n    >>> pair()\n    [1,2]\n    """\n    return [1, 2]\n'
    assert (await run_examples(module, "pair")).passed


async def test_an_endless_loop_is_stopped_at_the_timeout_and_counts_as_a_failure():
    module = 'def spin(n):\n    """\n    >>> spin(1)\n    1\n    """\n    while n:\n        n ^= n - 1\n    return n\n'
    began = time.monotonic()
    run = await run_examples(module, "spin", timeout_s=1.0)
    assert run.failed and "did not finish within 1 s" in run.summary
    assert time.monotonic() - began < 10


async def test_the_main_block_does_not_run_and_the_module_folder_is_importable(tmp_path):
    (tmp_path / "helper.py").write_text("def twice(x):\n    return 2 * x\n")
    marker = tmp_path / "main-ran"
    module = (f'from helper import twice\n\n\ndef quad(x):\n    """\n    >>> quad(2)\n    8\n    """\n'
              f'    return twice(twice(x))\n\n\nif __name__ == "__main__":\n    open({str(marker)!r}, "w")\n')
    run = await run_examples(module, "quad", str(tmp_path / "quad.py"))
    assert run.passed, run.summary
    assert not marker.exists()


async def test_a_module_that_cannot_load_here_is_inconclusive_not_a_failure():
    module = 'import no_such_package_here\n\n\ndef f():\n    """\n    >>> f()\n    1\n    """\n    return 1\n'
    run = await run_examples(module, "f")
    assert run.verdict == "inconclusive" and "no_such_package_here" in run.summary
    assert (await run_examples("def g():\n    return 1\n", "g")).verdict == "inconclusive"


# -- the team: several candidates, review choosing --------------------------------------------------------------

EXPLAIN = json.dumps({"cause": "longest is not updated correctly.", "line": "longest = length + 1"})
WRONG = BUGGY.split("\n\n\n")[0].replace("val < arr", "val <= arr")
RIGHT = MODULE.split("\n\n\n")[0]


def fix_request(text: str) -> FixRequest:
    snapshot = DocumentSnapshot.open("file:///tmp/lis.py", 3, text, "python")
    return FixRequest(snapshot, 4, 7, "fails its tests", "pytest")


async def test_with_doctests_the_first_candidate_whose_examples_pass_is_offered(make_llm_client, scripted_llm):
    scripted_llm.script(Rule(EXPLAIN, last_user="What causes it"),
                        Rule(f"```python\n{WRONG}\n```", last_user="complete fixed function `lis`"),
                        Rule(f"```python\n{RIGHT}\n```", last_user="Rewrite"))
    async with Team(make_llm_client(), deadline_s=60, fix_candidates=3, run_doctests=True) as team:
        result = await team.explain_and_fix(fix_request(BUGGY))
    assert result.ok, result.reason
    assert [e.new_text.strip() for e in result.edits] == ["longest = max(longest, length + 1)"]
    assert "its 2 example(s) pass" in result.reason
    proposals = [r for r in scripted_llm.completions if "Rewrite" in r.last_user_message]
    assert len(proposals) == 2, "it stops at the first candidate that passes"
    assert "suspects" not in proposals[0].last_user_message, "the first candidate is the unguided repair"
    assert "suspects this line" in proposals[1].last_user_message, "the second is led by diagnosis"


async def test_a_fix_whose_examples_fail_is_never_offered_and_the_next_round_hears_why(make_llm_client,
                                                                                     scripted_llm):
    scripted_llm.script(Rule(EXPLAIN, last_user="What causes it"),
                        Rule(f"```python\n{WRONG}\n```", last_user="Rewrite"))
    async with Team(make_llm_client(), deadline_s=60, run_doctests=True) as team:
        result = await team.explain_and_fix(fix_request(BUGGY))
    assert not result.ok and result.edits == ()
    assert "fails its own examples" in result.reason and "expected '3'" in result.reason
    later = [r.last_user_message for r in scripted_llm.completions if "Rewrite" in r.last_user_message][1:]
    assert later and all("gave '2', expected '3'" in prompt for prompt in later)


async def test_without_doctests_review_prefers_the_fix_most_candidates_agree_on(make_llm_client, scripted_llm):
    scripted_llm.script(Rule(EXPLAIN, last_user="What causes it"),
                        Rule(f"```python\n{WRONG}\n```", last_user="suspects this line"),
                        Rule(f"```python\n{RIGHT}\n```", last_user="Rewrite"))
    async with Team(make_llm_client(), deadline_s=60, fix_candidates=3) as team:
        result = await team.explain_and_fix(fix_request(BUGGY))
    assert result.ok
    assert [e.new_text.strip() for e in result.edits] == ["longest = max(longest, length + 1)"]
    assert len([r for r in scripted_llm.completions if "Rewrite" in r.last_user_message]) == 3


async def test_an_example_that_expects_an_exception_passes_when_it_is_raised():
    module = ('def get(d, key):\n    """\n    >>> get({}, "y")\n    Traceback (most recent call last):\n'
              '        ...\n    KeyError: \'y\'\n    """\n    return d[key]\n')
    assert (await run_examples(module, "get")).passed
    assert (await run_examples(module.replace("d[key]", "d.get(key)"), "get")).failed


async def test_setup_steps_and_checks_of_what_a_call_assigned_are_kept_and_skipped_ones_are_not():
    module = ('def peek(n, seq):\n    """\n    >>> seq = [0, 1, 2]\n    >>> head, seq = peek(2, seq)\n    >>> head\n'
              '    (0, 1)\n    >>> unrelated = 5\n    >>> peek(9, undefined_name)  # doctest: +SKIP\n    """\n'
              '    return tuple(seq[:n]), seq\n')
    sources = [example.source.strip() for example in examples_for(module, "peek")]
    assert sources == ["seq = [0, 1, 2]", "head, seq = peek(2, seq)", "head"]
    assert (await run_examples(module, "peek")).passed
    assert (await run_examples(module.replace("seq[:n]", "seq[1:n]"), "peek")).failed


async def test_an_example_that_loops_forever_fails_on_its_cpu_budget_not_the_wall_timeout():
    module = ('def spin(n):\n    """\n    >>> spin(1)\n    1\n    >>> spin(0)\n    0\n    """\n'
              '    while n == 0:\n        pass\n    return n\n')
    run = await run_examples(module, "spin", timeout_s=600)
    assert run.failed and run.first_failure is not None
    assert run.first_failure.source == "spin(0)" and "s of CPU time (an endless loop?)" in run.first_failure.got
