"""No accepted edit loses the user's code, whatever the model answered.

Bad answers a small model really gives — one JSON value (the other reply format the team asks for), prose, nothing,
the whole file, another function, the header only, the function twice, half a statement, another language — go
through the path a fix really takes (the reply's code block, fitted to the target by the generation agent) and then
through review's verification. Whatever review accepts must parse, keep every definition of the file (same name,
same count), keep every name the rest of the file uses bound, and put no line twice at the seams.
"""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metagpt_lsp.agents.edits.patches import verify_patch
from metagpt_lsp.agents.llm.errors import LlmBadReply
from metagpt_lsp.agents.syntax.problems import syntax_problems
from metagpt_lsp.agents.syntax.snapshot import DocumentSnapshot
from metagpt_lsp.agents.team.generation_agent import fix_patch

KEEP_ME = "def keep_me(s)\n    return s.strip()\n\n\nprint(keep_me(' a '))\n"
WORKER = '''import math

LIMIT = 10


class Counter:
    """Counts things."""

    def __init__(self, start):
        self.count = start

    def bump(self, by):
        self.count = self.count - by
        return self.count


def distance(a, b):
    delta = a - b
    return math.fabs(delta)


total = distance(3, 4) + LIMIT
print(total, Counter(1).bump(2))
'''

# (name, document, target text, diagnostic text inside the target)
TARGETS = [
    ("broken header", KEEP_ME, "def keep_me(s)", "def keep_me(s)"),
    ("whole broken function", KEEP_ME, "def keep_me(s)\n    return s.strip()", "def keep_me(s)"),
    ("statement in a method", WORKER, "self.count = self.count - by", "self.count - by"),
    ("whole method", WORKER, "def bump(self, by):\n        self.count = self.count - by\n        return self.count",
     "self.count - by"),
    ("whole class", WORKER, WORKER[WORKER.index("class Counter"):WORKER.index("\n\n\ndef distance")], "- by"),
    ("module-level assignment", WORKER, "total = distance(3, 4) + LIMIT", "distance(3, 4)"),
    ("function", WORKER, "def distance(a, b):\n    delta = a - b\n    return math.fabs(delta)", "fabs"),
]

BAD_REPLIES = [
    json.dumps({"findings": []}),
    json.dumps({"cause": "a colon is missing", "line": "def keep_me(s)"}),
    "[]",
    "The function looks correct to me, nothing needs to change.",
    "**Fix**: add a colon at the end of the header line.",
    "",
    "```\n```",
    "def keep_me(s):",
    "def keep_me(s):\n    return s.strip()\n\ndef keep_me(s):\n    return s.strip()",
    "def keep_me(s):\n    return s.strip()\n    return s.strip()",
    "def keep_me(s):\n    return s.strip()\n\n\nprint(keep_me(' a '))",
    "def other():\n    return 1",
    "return s +",
    "function keep_me(s) { return s.trim(); }",
    "self.count = self.count + by\n        return self.count",
    "self.count = self.count + by\nreturn self.count\nreturn self.count",
    "def bump(self, by):\n    self.count += by\n    return self.count",
    "def bump(self):\n    self.count += 1\n    return self.count",
    "def bump(self, amount):\n    self.count += amount\n    return self.count",
    "class Counter:\n    def bump(self, by):\n        self.count += by\n        return self.count",
    "result = distance(3, 4) + LIMIT",
    "total = distance(4, 3) + LIMIT\ntotal = distance(4, 3) + LIMIT",
    "def distance(a, b):\n    return abs(a - b)\n\ndef distance(a, b):\n    return abs(a - b)",
    "import math\n\nLIMIT = 10\n",
    WORKER,
    "pass",
    "Here is the corrected code.",
]


def _snapshot(text: str) -> DocumentSnapshot:
    return DocumentSnapshot.open("file:///work/sample.py", 3, text, "python")


def _definitions(text: str) -> list[str]:
    return sorted(re.findall(r"^\s*(?:def|class)\s+(\w+)", text, re.MULTILINE))


def _doubled_lines(text: str) -> set[str]:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return {a for a, b in zip(lines, lines[1:], strict=False) if a == b and len(a) > 3}


def _accepted(name: str, reply: str) -> str | None:
    """The patched document when review accepts ``reply`` as a fix of target ``name``, else None."""
    _, document, target, diagnostic = next(t for t in TARGETS if t[0] == name)
    snapshot = _snapshot(document)
    start = document.encode().index(target.encode())
    focus_start = document.encode().index(diagnostic.encode(), start)
    try:
        patch = fix_patch(snapshot, start, start + len(target.encode()), reply)
    except LlmBadReply:
        return None
    verdict = verify_patch(snapshot, patch, (focus_start, focus_start + len(diagnostic.encode())))
    return verdict.new_source.decode() if verdict.accepted else None


def _assert_keeps_the_code(name: str, reply: str) -> None:
    patched = _accepted(name, reply)
    if patched is None:
        return
    _, document, _, _ = next(t for t in TARGETS if t[0] == name)
    after = _snapshot(patched)
    assert not syntax_problems(after.tree, after.source), f"accepted an edit that does not parse:\n{patched}"
    expected = _definitions(document)
    if name.startswith(("broken header", "whole broken")):
        expected = sorted(set(expected) | {"keep_me"})
    kept = Counter(_definitions(patched))
    assert all(kept[name] >= count for name, count in Counter(expected).items()), f"a definition was lost:\n{patched}"
    assert all(kept[name] <= count for name, count in Counter(expected).items()), f"defined twice:\n{patched}"
    assert _doubled_lines(patched) <= _doubled_lines(document), f"a line appears twice:\n{patched}"
    for used in ("keep_me", "total", "LIMIT", "distance", "Counter"):
        if re.search(rf"\b{used}\b", document):
            assert re.search(rf"^\s*(def |class )?{used}\b", patched, re.MULTILINE), f"{used} lost:\n{patched}"


@pytest.mark.parametrize("reply", BAD_REPLIES, ids=range(len(BAD_REPLIES)))
@pytest.mark.parametrize("name", [t[0] for t in TARGETS])
def test_no_bad_answer_is_accepted_as_an_edit_that_loses_code(name: str, reply: str):
    _assert_keeps_the_code(name, reply)


WRAPPERS = [
    "{}",
    "```python\n{}\n```",
    "```\n{}\n```",
    "Here is the fixed code:\n```python\n{}\n```\nThis adds the missing colon.",
    "```json\n{}\n```",
    "{}\n\nExplanation: the header lacked a colon.",
]


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from([t[0] for t in TARGETS]), parts=st.lists(st.sampled_from(BAD_REPLIES), min_size=1,
                                                                     max_size=3),
       wrapper=st.sampled_from(WRAPPERS))
def test_any_mix_of_bad_answers_is_never_accepted_as_an_edit_that_loses_code(name: str, parts: list[str],
                                                                            wrapper: str):
    _assert_keeps_the_code(name, wrapper.format("\n".join(parts)))


def test_the_json_reply_to_a_broken_header_is_refused_and_a_real_fix_is_not():
    """The data loss an outside tester saw: ``{"findings": []}`` replaced ``def keep_me(s)`` and its body."""
    assert _accepted("whole broken function", json.dumps({"findings": []})) is None
    assert _accepted("broken header", json.dumps({"findings": []})) is None
    fixed = _accepted("broken header", "```python\ndef keep_me(s):\n```")
    assert fixed == KEEP_ME.replace("def keep_me(s)", "def keep_me(s):")
    whole = _accepted("whole broken function", "```python\ndef keep_me(s):\n    return s.strip()\n```")
    assert whole == KEEP_ME.replace("def keep_me(s)", "def keep_me(s):")


def test_a_whole_function_for_a_header_target_leaves_no_body_line_twice():
    patched = _accepted("broken header", "```python\ndef keep_me(s):\n    return s.strip()\n```")
    assert patched is None or patched.count("return s.strip()") == 1, patched


def test_good_fixes_still_pass_every_rule():
    assert _accepted("statement in a method", "self.count = self.count + by") == WORKER.replace(
        "self.count - by", "self.count + by")
    method = "def bump(self, by):\n    self.count = self.count + by\n    return self.count"
    assert _accepted("whole method", method) == WORKER.replace("self.count - by", "self.count + by")
    assert _accepted("module-level assignment", "total = distance(4, 3) + LIMIT") is not None
    assert _accepted("function", "def distance(a, b):\n    return abs(a - b)") is not None


def test_parameters_change_only_when_the_diagnostic_is_on_the_header():
    assert _accepted("whole method", "def bump(self, amount):\n    self.count += amount\n    return self.count") is None
    renamed = "def keep_me(text):\n    return text.strip()"
    assert _accepted("whole broken function", f"```python\n{renamed}\n```") is not None
