"""Code out of model replies: the right fenced block, or the reply without its prose."""

from __future__ import annotations

from metagpt_lsp.agents.llm.code_blocks import extract_code_block, fenced_blocks

FIXED = "def mean(xs):\n    if not xs:\n        return 0.0\n    return sum(xs) / len(xs)"


def test_the_fenced_block_is_taken_without_the_prose_around_it():
    reply = f"Here is the fixed function:\n\n```python\n{FIXED}\n```\n\nThis avoids dividing by zero."
    assert extract_code_block(reply, "python") == FIXED


def test_the_last_block_wins_unless_it_is_a_short_usage_example():
    original = "def mean(xs):\n    return sum(xs) / len(xs) - 1"
    reply = f"Original:\n```python\n{original}\n```\nFixed:\n```python\n{FIXED}\n```"
    assert extract_code_block(reply) == FIXED
    reply = f"```python\n{FIXED}\n```\nUsage:\n```python\nmean([1])\n```"
    assert extract_code_block(reply, "py") == FIXED


def test_blocks_in_another_language_are_passed_over():
    reply = f"```python\n{FIXED}\n```\nRun it with:\n```bash\npython -c 'import m; print(m.mean([1, 2]))'\n```"
    assert extract_code_block(reply, "python") == FIXED


def test_indentation_is_kept_and_an_unclosed_fence_runs_to_the_end():
    body = "    if not xs:\n        return 0.0"
    assert extract_code_block(f"```py\n{body}\n```") == body
    assert extract_code_block(f"Sure:\n```python\n{body}\n") == body
    assert fenced_blocks("~~~js\nlet a = 1;\n~~~\n````\nx\n````") == [("javascript", "let a = 1;\n"), ("", "x\n")]


def test_an_unfenced_reply_loses_its_opening_and_closing_prose_only():
    reply = f"Sure! Here is the corrected code:\n{FIXED}\n\nThis version returns 0.0 for an empty list."
    assert extract_code_block(reply) == FIXED
    code = "this = compute()\n\nthis_too = 2"
    assert extract_code_block(code) == code
    assert extract_code_block("`x + 1`") == "x + 1"
