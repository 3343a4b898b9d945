"""Syntax problems read off a tree-sitter tree, worded for a person: ``expected ":"``, ``unexpected ")"``.

tree-sitter marks what it could not parse with ERROR nodes and what it had to invent with MISSING nodes. The walk
descends only into subtrees that contain an error (``has_error``), so a clean file costs one check at the root and a
broken one costs the paths to its errors, not the whole tree.
"""

from __future__ import annotations

from dataclasses import dataclass

import tree_sitter

_QUOTES = ("'", '"', "`", '"""', "'''")
_MAX_REPORTED = 100


@dataclass(frozen=True)
class SyntaxProblem:
    """One syntax error: the bytes of the offending token and a message a person understands."""

    start_byte: int
    end_byte: int
    message: str


def syntax_problems(tree: tree_sitter.Tree | None, source: bytes) -> list[SyntaxProblem]:
    """The syntax problems of a tree, in document order, at most one per offending token."""
    if tree is None or not tree.root_node.has_error:
        return []
    problems: list[SyntaxProblem] = []
    stack = [tree.root_node]
    while stack and len(problems) < _MAX_REPORTED:
        node = stack.pop()
        if node.is_missing:
            problems.append(_missing(node, source))
        elif node.is_error:
            problems.append(_unexpected(node, source))
            stack.extend(child for child in reversed(node.children) if child.has_error and not child.is_error)
        else:
            stack.extend(child for child in reversed(node.children) if child.has_error)
    unique: dict[tuple[int, int], SyntaxProblem] = {}
    for problem in problems:
        unique.setdefault((problem.start_byte, problem.end_byte), problem)
    return sorted(unique.values(), key=lambda problem: (problem.start_byte, problem.end_byte))


def _token_text(node: tree_sitter.Node, source: bytes, limit: int = 40) -> str:
    text = source[node.start_byte:node.end_byte].decode("utf-8", "replace").split("\n", 1)[0].strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _first_leaf(node: tree_sitter.Node) -> tree_sitter.Node:
    while node.child_count:
        node = node.children[0]
    return node


def _previous_leaf(node: tree_sitter.Node) -> tree_sitter.Node | None:
    current = node
    while current is not None and current.prev_sibling is None:
        current = current.parent
    if current is None:
        return None
    leaf = current.prev_sibling
    while leaf.child_count:
        leaf = leaf.children[-1]
    return leaf


def _missing(node: tree_sitter.Node, source: bytes) -> SyntaxProblem:
    expected = node.type
    wording = f'expected "{expected}"' if not expected.replace("_", "").isalnum() else f"expected {_spoken(expected)}"
    anchor = _previous_leaf(node)
    while anchor is not None and anchor.start_byte == anchor.end_byte:
        anchor = _previous_leaf(anchor)
    if anchor is None:
        return SyntaxProblem(node.start_byte, node.start_byte, wording)
    return SyntaxProblem(anchor.start_byte, anchor.end_byte, f"{wording} after {_quoted(_token_text(anchor, source))}")


def _unexpected(node: tree_sitter.Node, source: bytes) -> SyntaxProblem:
    text = source[node.start_byte:node.end_byte].decode("utf-8", "replace")
    leaf = _first_leaf(node)
    token = _token_text(leaf, source) if leaf.end_byte > leaf.start_byte else _token_text(node, source)
    stripped = text.lstrip()
    for quote in sorted(_QUOTES, key=len, reverse=True):
        prefix_end = len(stripped) - len(stripped.lstrip("rbfuRBFU"))
        body = stripped[prefix_end:]
        if prefix_end <= 2 and body.startswith(quote) and quote not in body[len(quote):]:
            return SyntaxProblem(node.start_byte, node.end_byte, "unterminated string")
    if leaf.type in ("string_start",) or leaf.type.startswith(("string", "template")):
        return SyntaxProblem(leaf.start_byte, max(leaf.end_byte, leaf.start_byte + 1), "unterminated string")
    if not token:
        return SyntaxProblem(node.start_byte, node.end_byte, "unexpected end of input")
    start = leaf.start_byte if leaf.end_byte > leaf.start_byte else node.start_byte
    end = leaf.end_byte if leaf.end_byte > leaf.start_byte else node.end_byte
    return SyntaxProblem(start, end, f"unexpected {_quoted(token)}")


def _quoted(token: str) -> str:
    return f'"{token}"'


def _spoken(node_type: str) -> str:
    return node_type.replace("_", " ")
