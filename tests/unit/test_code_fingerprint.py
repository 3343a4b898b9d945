"""The fingerprint that decides whether an edit is worth a review: equal for edits of layout, comments and Python
type annotations, different for anything that changes what the code does — including a statement moved out of a
block, which changes no token."""

from __future__ import annotations

import pytest

from metagpt_lsp.agents.syntax.fingerprint import fingerprint
from metagpt_lsp.agents.syntax.snapshot import DocumentSnapshot

BASE = "def f(x, y=2, *rest):\n    total = x + y\n    for item in rest:\n        total += item\n    return total\n"


def whole(text: str, language: str = "python") -> str:
    snapshot = DocumentSnapshot.open(f"file:///f.{'py' if language == 'python' else 'ts'}", 1, text, language)
    return fingerprint(snapshot, 0, len(snapshot.source))


@pytest.mark.parametrize("same", [
    BASE.replace("    total = x + y\n", "    total = x+y  # start\n"),
    BASE.replace("def f(x, y=2, *rest):", "def f(x: int, y: int = 2, *rest: int) -> int:"),
    BASE.replace("    total = x + y\n", "    total: int = x  +  y\n"),
    BASE.replace("    for item", "    # add the rest\n\n    for item"),
])
def test_layout_comments_and_annotations_keep_the_fingerprint(same: str):
    assert whole(same) == whole(BASE)


@pytest.mark.parametrize("different", [
    BASE.replace("y=2", "y=3"),
    BASE.replace("        total += item\n    return total\n", "        total += item\n        return total\n"),
    BASE.replace("x + y", "x - y"),
    BASE.replace("def f(", "def g("),
    BASE.replace("    return total\n", "    return total\n    # done\n    print(total)\n"),
])
def test_a_change_of_behaviour_changes_the_fingerprint(different: str):
    assert whole(different) != whole(BASE)


def test_typescript_annotations_count():
    assert whole("function f(x: number) { return x; }\n", "typescript") != whole(
        "function f(x: string) { return x; }\n", "typescript")
