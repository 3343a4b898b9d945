"""Syntax problems read off a tree-sitter tree, worded for a person: ``expected ":"``, ``unexpected ")"``.

tree-sitter marks what it had to invent with MISSING nodes — those already say what was expected — and what it
could not parse with ERROR nodes, which say nothing and often swallow whole functions. An ERROR is explained in
this order, first answer wins:

1. a quote opened and never closed on its line: ``unterminated string``;
2. trial repair (:mod:`.syntax_repair`): the one-token edit that makes the error go away names the problem —
   deleting a closing bracket that closes nothing (``unexpected ")"``), inserting the closer an open bracket calls
   for (``expected "]" after "2"``), a ``:``, ``;`` or ``,`` (``expected ":" after ")"``), a placeholder name
   (``expected an expression after "+"``), or deleting a token the parser could not place (``unexpected "y"``);
3. an error that vanishes when its surroundings are parsed on their own is the echo of an earlier error
   (indentation languages repeat one mistake all over a file): not reported twice;
4. otherwise the bracket that closes nothing, the JSX tag or bracket left open (``unclosed "<div>"``,
   ``unclosed "("``) or the first token of the error (``unexpected "x"``).

The range is always the offending token (the one after which something is expected, or the one that is wrong).
The walk descends only into subtrees that contain an error (``has_error``), so a clean file costs one check at the
root and a broken one costs the paths to its errors plus a bounded number of small trial parses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import islice

import tree_sitter

from .syntax_repair import TrialRepair, error_sites
from .syntax_tokens import (
    CLOSERS, OPENERS, bracket_balance, children_between, is_quote, line_end, line_start, token_before, token_text,
    tokens_between,
)

_MAX_REPORTED = 100
_MAX_EXPLAINED = 8
"""Errors explained by trial repair per call; later ones get the cheap explanations only."""
_MAX_SCAN_BYTES = 4000
_DELETIONS_TRIED = 3
_MAX_EDGE_CHILDREN = 64
_PLACEHOLDER = " x"
"""A name to stand in for a missing operand; the space keeps it from gluing onto a keyword."""
_WORDLIKE = re.compile(r"\w")
_LINE_ENDS_STATEMENT = ("pass_statement", "short_var_declaration")
"""Node kinds of languages where a line break ends a statement (Python, Go): there ``;`` is never the fix."""


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
    root = tree.root_node
    repair = TrialRepair(tree, source)
    sites = error_sites(root, _MAX_REPORTED)
    errors = [(site.start_byte, site.end_byte) for site in sites if site.is_error]
    problems: list[SyntaxProblem] = []
    explained = 0
    for site in sites:
        if site.is_missing:
            if not any(start <= site.start_byte <= end for start, end in errors):
                problems.append(_explain_missing(site, root, source))
            continue
        explained += 1
        problem = _explain_error(site, root, source, repair if explained <= _MAX_EXPLAINED else None, problems)
        if problem is not None:
            problems.append(problem)
    unique: dict[tuple[int, int], SyntaxProblem] = {}
    for problem in problems:
        unique.setdefault((problem.start_byte, problem.end_byte), problem)
    return sorted(unique.values(), key=lambda problem: (problem.start_byte, problem.end_byte))


# -- MISSING: the parser says what it expected ----------------------------------------------------------------------

def _explain_missing(node: tree_sitter.Node, root: tree_sitter.Node, source: bytes) -> SyntaxProblem:
    if is_quote(node) and node.parent is not None:
        return _unterminated(node.parent.start_byte, source)
    return _expected_after(_expected(node.type, node.is_named), root, node.start_byte, source)


def _expected(kind: str, named: bool) -> str:
    if not named:
        return f"expected {_quoted(kind)}"
    if "semicolon" in kind:
        return 'expected ";"'
    if kind.endswith("identifier"):
        return "expected a name"
    return "expected " + kind.strip("_").replace("_", " ")


def _expected_after(wording: str, root: tree_sitter.Node, at: int, source: bytes) -> SyntaxProblem:
    """``wording`` on the token before byte ``at``, where the expected thing belongs."""
    anchor = token_before(root, at)
    if anchor is None:
        return SyntaxProblem(at, at, wording)
    return SyntaxProblem(anchor.start_byte, anchor.end_byte, f"{wording} after {_quoted(token_text(anchor, source))}")


# -- ERROR: find out what went wrong ---------------------------------------------------------------------------------

def _explain_error(
    node: tree_sitter.Node,
    root: tree_sitter.Node,
    source: bytes,
    repair: TrialRepair | None,
    earlier: list[SyntaxProblem],
) -> SyntaxProblem | None:
    unterminated = _unterminated_string(node, source)
    if unterminated is not None:
        return unterminated
    tokens = _tokens_of(node, root, source, repair)
    inside = [token for token in tokens if token.start_byte >= node.start_byte]
    unclosed, stray = bracket_balance(tokens)
    stray = [token for token in stray if token.start_byte >= node.start_byte]
    unclosed = [token for token in unclosed if token.start_byte >= line_start(source, node.start_byte)]
    if repair is not None:
        for start, end, insert in _trial_edits(node, inside, unclosed, stray, repair, source):
            window = repair.window(node.start_byte, end)
            if window is not None and window.errors_in_zone() and repair.fixes(window, start, end, insert.encode()):
                return _named_by_edit(root, source, start, end, insert)
        window = repair.window(node.start_byte, inside[-1].end_byte if inside else node.end_byte)
        if earlier and window is not None and not window.errors_in_zone():
            return None  # the echo of an earlier error: its surroundings parse on their own
    if stray:
        return _unexpected(stray[0], source)
    if unclosed:
        return SyntaxProblem(unclosed[-1].start_byte, unclosed[-1].end_byte, f"unclosed {_quoted(unclosed[-1].type)}")
    unclosed_tag = _unclosed_tag(node, source)
    if unclosed_tag is not None:
        return unclosed_tag
    if inside:
        return _unexpected(inside[0], source)
    return _expected_after("unexpected end of line", root, node.start_byte, source)


def _tokens_of(
    node: tree_sitter.Node, root: tree_sitter.Node, source: bytes, repair: TrialRepair | None,
) -> list[tree_sitter.Node]:
    """The tokens of an ERROR, from the start of the statement it begins in (so brackets opened before count)."""
    start = line_start(source, node.start_byte)
    if repair is not None:
        start = repair.statement_start(start)
    if node.end_byte - start <= _MAX_SCAN_BYTES:
        return tokens_between(root, start, node.end_byte)
    head = tokens_between(root, start, start + _MAX_SCAN_BYTES // 2)
    tail = tokens_between(root, max(line_start(source, node.end_byte - 1), head[-1].end_byte if head else start),
                          node.end_byte)
    return head + tail


def _trial_edits(
    node: tree_sitter.Node,
    inside: list[tree_sitter.Node],
    unclosed: list[tree_sitter.Node],
    stray: list[tree_sitter.Node],
    repair: TrialRepair,
    source: bytes,
) -> list[tuple[int, int, str]]:
    """One-token edits ``(start, end, insert)`` worth trying, most likely first."""
    if not inside:
        return [(node.start_byte, node.start_byte, token) for token in (";", ":", ",", _PLACEHOLDER)]
    first_line_end = line_end(source, inside[0].start_byte)
    head_tokens = [token for token in inside if token.start_byte < first_line_end]
    head, tail = head_tokens[-1].end_byte, inside[-1].end_byte
    between = [inside[0].end_byte, inside[-1].start_byte] if len(inside) > 1 else []
    edits: list[tuple[int, int, str]] = [(token.start_byte, token.end_byte, "") for token in stray[:1]]
    if unclosed:
        closer = OPENERS[unclosed[-1].type]
        after_opener = [token.end_byte for token in inside if token.start_byte >= unclosed[-1].end_byte][:1]
        first = [head, tail] if head > unclosed[-1].end_byte else [tail, head]  # not "{}" if "{...}" will do
        edits += [(point, point, closer) for point in (*first, *after_opener)]
    separators = [":", ","] if _line_ends_statement(repair) else [":", ";", ","]
    for point in dict.fromkeys([head, node.start_byte, *between, tail]):
        edits += [(point, point, separator) for separator in separators]
    edits += [(point, point, _PLACEHOLDER) for point in dict.fromkeys([head, tail])]
    edits += [(token.start_byte, token.end_byte, "") for token in reversed(head_tokens[-_DELETIONS_TRIED:])]
    edits += [(point, point, closer) for point in dict.fromkeys([head, tail]) for closer in sorted(CLOSERS)]
    return [edit for edit in dict.fromkeys(edits) if not edit[2] or edit[2] == _PLACEHOLDER or
            repair.has_token(edit[2])]


def _line_ends_statement(repair: TrialRepair) -> bool:
    return any(repair.has_token(kind, named=True) for kind in _LINE_ENDS_STATEMENT)


def _named_by_edit(root: tree_sitter.Node, source: bytes, start: int, end: int, insert: str) -> SyntaxProblem:
    """The problem a successful trial edit reveals, on the token it concerns."""
    if not insert:
        removed = tokens_between(root, start, end, limit=1)
        return _unexpected(removed[0], source) if removed else SyntaxProblem(start, end, "unexpected text")
    if insert != _PLACEHOLDER:
        return _expected_after(f"expected {_quoted(insert)}", root, start, source)
    anchor = token_before(root, start)
    after_keyword = anchor is not None and _WORDLIKE.match(token_text(anchor, source))
    return _expected_after("expected a name" if after_keyword else "expected an expression", root, start, source)


# -- wording ---------------------------------------------------------------------------------------------------------

def _unterminated_string(node: tree_sitter.Node, source: bytes) -> SyntaxProblem | None:
    """An opening quote left loose in the ERROR (near its edges), with no closing quote after it on its line."""
    for quote in _edge_children(node, source):
        if not is_quote(quote):
            continue
        opening = source[quote.start_byte:quote.end_byte].lstrip(b"rbfuRBFU@$")
        if not opening or opening[:1] not in (b'"', b"'", b"`"):
            continue
        rest = source[quote.end_byte:line_end(source, quote.end_byte)]
        if len(opening) == 3 or not re.search(rb"(?<!\\)(?:\\\\)*" + re.escape(opening), rest):
            return _unterminated(quote.start_byte, source)
    return None


def _unterminated(start: int, source: bytes) -> SyntaxProblem:
    end = line_end(source, start)
    end = start + len(source[start:end].rstrip()) if end > start else start
    return SyntaxProblem(start, max(end, start + 1), "unterminated string")


def _unclosed_tag(node: tree_sitter.Node, source: bytes) -> SyntaxProblem | None:
    """A JSX opening tag near the edges of the ERROR with no closing tag after it."""
    children = list(_edge_children(node, source))
    for index, child in enumerate(children):
        if child.type == "jsx_opening_element":
            if not any(later.type == "jsx_closing_element" for later in children[index + 1:]):
                return SyntaxProblem(child.start_byte, child.end_byte, f"unclosed {_quoted(token_text(child, source))}")
    return None


def _edge_children(node: tree_sitter.Node, source: bytes) -> list[tree_sitter.Node]:
    """The ERROR itself if it is a bare token, else its first children and those on its last line (a bounded few)."""
    if node.child_count == 0:
        return [node]
    last_start = line_start(source, max(node.end_byte - 1, node.start_byte))
    edges = list(islice(children_between(node, node.start_byte, node.end_byte), _MAX_EDGE_CHILDREN))
    edges += islice(children_between(node, last_start, node.end_byte), _MAX_EDGE_CHILDREN)
    return list(dict.fromkeys(edges))


def _unexpected(token: tree_sitter.Node, source: bytes) -> SyntaxProblem:
    return SyntaxProblem(token.start_byte, token.end_byte, f"unexpected {_quoted(token_text(token, source))}")


def _quoted(token: str) -> str:
    return f'"{token}"'
