"""Syntax problems read off a tree-sitter tree, worded for a person: ``expected ":"``, ``unexpected ")"``.

tree-sitter marks what it had to invent with MISSING nodes — those already say what was expected — and what it
could not parse with ERROR nodes, which say nothing and often swallow whole functions. A MISSING node inside an
ERROR is part of that error. An ERROR is explained in this order, first answer wins:

1. a quote opened and never closed on its line: ``unterminated string``;
2. trial repair (:mod:`.syntax_repair`): the one-token edit that makes the error go away names the problem —
   deleting a closing bracket that closes nothing (``unexpected ")"``), inserting the closer an open bracket calls
   for (``expected "]" after "2"``), a ``:``, ``;`` or ``,`` (``expected ":" after ")"``), a placeholder name
   (``expected an expression after "+"``), or deleting a token the parser could not place (``unexpected "y"``);
3. an error that the repair of an earlier one also removes, or that vanishes when its surroundings are parsed on
   their own, is the echo of that earlier error (indentation languages repeat one mistake all over a file, a
   missing ``}`` upsets the next function): not reported twice;
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

from .repair import PARSE_BUDGET_BYTES, TrialRepair, error_sites
from .tokens import (
    children_between,
    cursor_node,
    is_quote,
    line_end,
    line_start,
    token_before,
    token_text,
    tokens_between,
)
from .trial_edits import PLACEHOLDER, ErrorTokens, TrialEdit, scan_error, trial_edits

_MAX_REPORTED = 100
_MAX_EXPLAINED = 8
"""Errors explained by trial repair per call; later ones get the cheap explanations only."""
_MAX_EDGE_CHILDREN = 64
_ECHO_CHECKS = 2
_MAX_INVISIBLE_SEARCH = 1000
_WORDLIKE = re.compile(r"\w")
_LINE_ENDS_STATEMENT = ("pass_statement", "short_var_declaration")
"""Node kinds of languages where a line break ends a statement (Python, Go): there ``;`` is never the fix."""


@dataclass(frozen=True)
class SyntaxProblem:
    """One syntax error: the bytes of the offending token and a message a person understands."""

    start_byte: int
    end_byte: int
    message: str


def syntax_problems(tree: tree_sitter.Tree | None, source: bytes,
                    budget_bytes: int = PARSE_BUDGET_BYTES) -> list[SyntaxProblem]:
    """The syntax problems of a tree, in document order, at most one per offending token. Trial repair may parse
    ``budget_bytes`` in all; errors past it get the cheap explanations."""
    if tree is None or not tree.root_node.has_error:
        return []
    explainer = _Explainer(tree, source, budget_bytes)
    sites = error_sites(tree.root_node, _MAX_REPORTED)
    for site in sites:
        explainer.explain(site)
    if not sites:
        explainer.problems.append(_invisible_missing(tree.root_node, source))
    unique: dict[tuple[int, int], SyntaxProblem] = {}
    for problem in explainer.problems:
        unique.setdefault((problem.start_byte, problem.end_byte), problem)
    return sorted(unique.values(), key=lambda problem: (problem.start_byte, problem.end_byte))


class _Explainer:
    """Explains the error sites of one tree in document order, remembering the repairs found so far."""

    def __init__(self, tree: tree_sitter.Tree, source: bytes, budget_bytes: int) -> None:
        self.root = tree.root_node
        self.source = source
        self.repair = TrialRepair(tree, source, budget_bytes)
        self.problems: list[SyntaxProblem] = []
        self.repairs: list[TrialEdit] = []
        self.errors: list[tree_sitter.Node] = []
        self.explained = 0
        line_ends_statement = any(self.repair.has_token(kind, named=True) for kind in _LINE_ENDS_STATEMENT)
        separators = [":", ",", ";"] if not line_ends_statement else [":", ","]
        self.separators = [token for token in separators if self.repair.has_token(token)]

    def explain(self, site: tree_sitter.Node) -> None:
        if site.is_missing and any(error.start_byte <= site.start_byte <= error.end_byte for error in self.errors):
            return  # what the parser invented while recovering from that error
        if self._is_echo(site):
            return
        if site.is_missing:
            self.problems.append(self._missing(site))
            return
        self.errors.append(site)
        self.explained += 1
        problem = self._error(site, self.explained <= _MAX_EXPLAINED)
        if problem is not None:
            self.problems.append(problem)

    def _is_echo(self, site: tree_sitter.Node) -> bool:
        """Whether a repair already found for an earlier error also makes this one go away."""
        for edit in self.repairs[-_ECHO_CHECKS:]:
            window = self.repair.window(edit.start, max(site.end_byte, edit.end))
            if window is not None and window.errors_in_zone() and self.repair.fixes(window, edit):
                return True
        return False

    # -- MISSING: the parser says what it expected ------------------------------------------------------------------

    def _missing(self, node: tree_sitter.Node) -> SyntaxProblem:
        if is_quote(node) and node.parent is not None:
            return _unterminated(node.parent.start_byte, self.source)
        return self._expected_after(_expected(node.type, node.is_named), node.start_byte)

    def _expected_after(self, wording: str, at: int) -> SyntaxProblem:
        """``wording`` on the token before byte ``at``, where the expected thing belongs."""
        anchor = token_before(self.root, at)
        if anchor is None:
            return SyntaxProblem(at, at, wording)
        text = token_text(anchor, self.source)
        start = max(anchor.start_byte, line_start(self.source, anchor.end_byte - 1))  # a long string: its last line
        start += len(self.source[start:anchor.end_byte]) - len(self.source[start:anchor.end_byte].lstrip())
        return SyntaxProblem(start, anchor.end_byte, f"{wording} after {_quoted(text)}")

    # -- ERROR: find out what went wrong ----------------------------------------------------------------------------

    def _error(self, node: tree_sitter.Node, with_trials: bool) -> SyntaxProblem | None:
        source = self.source
        unterminated = _unterminated_string(node, source)
        if unterminated is not None:
            return unterminated
        statement = line_start(source, node.start_byte)
        if with_trials:
            statement = self.repair.statement_start(statement)
        tokens = scan_error(node, self.root, source, statement)
        if with_trials:
            if self.problems:
                end = tokens.inside[-1].end_byte if tokens.inside else node.end_byte
                window = self.repair.window(node.start_byte, end)
                if window is not None and not window.errors_in_zone():
                    return None  # the echo of an earlier error: its surroundings parse on their own
            for edit in trial_edits(tokens, source, self.separators):
                window = self.repair.window(node.start_byte, edit.end)
                if window is not None and window.errors_in_zone() and self.repair.fixes(window, edit):
                    self.repairs.append(edit)
                    return self._named_by(edit)
        return self._cheap_explanation(tokens)

    def _named_by(self, edit: TrialEdit) -> SyntaxProblem:
        """The problem a successful trial edit reveals, on the token it concerns."""
        if not edit.insert:
            removed = tokens_between(self.root, edit.start, edit.end, limit=1)
            if not removed:
                return SyntaxProblem(edit.start, edit.end, "unexpected text")
            return _unexpected(removed[0], self.source)
        if edit.insert != PLACEHOLDER:
            return self._expected_after(f"expected {_quoted(edit.insert)}", edit.start)
        anchor = token_before(self.root, edit.start)
        after_keyword = anchor is not None and _WORDLIKE.match(token_text(anchor, self.source))
        return self._expected_after("expected a name" if after_keyword else "expected an expression", edit.start)

    def _cheap_explanation(self, tokens: ErrorTokens) -> SyntaxProblem:
        """Without a repair: the closer that closes nothing, what is left open, else the first token."""
        if tokens.stray:
            return _unexpected(tokens.stray[0], self.source)
        if tokens.unclosed_inside:
            opener = tokens.unclosed_inside[-1]
            return SyntaxProblem(opener.start_byte, opener.end_byte, f"unclosed {_quoted(opener.type)}")
        unclosed_tag = _unclosed_tag(tokens.node, self.source)
        if unclosed_tag is not None:
            return unclosed_tag
        if tokens.inside:
            return _unexpected(tokens.inside[0], self.source)
        return self._expected_after("unexpected end of line", tokens.node.start_byte)


def _invisible_missing(root: tree_sitter.Node, source: bytes) -> SyntaxProblem:
    """A tree with an error but no visible ERROR or MISSING node: a grammar's hidden separator is missing.

    It sits between two children of the deepest node that has the error; the first child that follows another
    on the same line, with no separator between them, is the token that came too soon.
    """
    node = root
    while True:
        cursor = node.walk()
        child = None
        if cursor.goto_first_child():
            while not cursor_node(cursor).has_error and cursor.goto_next_sibling():
                pass
            last = cursor_node(cursor)
            child = last if last.has_error else None
        if child is None:
            break
        node = child
    cursor, previous = node.walk(), None
    if cursor.goto_first_child():
        for _ in range(_MAX_INVISIBLE_SEARCH):
            current = cursor_node(cursor)
            if current.type in (";", ","):
                previous = None
            elif not current.is_extra:
                if previous is not None and b"\n" not in source[previous.end_byte:current.start_byte]:
                    return _unexpected(_first_token(current), source)
                previous = current
            if not cursor.goto_next_sibling():
                break
    return _unexpected(_first_token(node), source)


def _first_token(node: tree_sitter.Node) -> tree_sitter.Node:
    found = tokens_between(node, node.start_byte, node.end_byte, limit=1)
    return found[0] if found else node


def _expected(kind: str, named: bool) -> str:
    if not named:
        return f"expected {_quoted(kind)}"
    if "semicolon" in kind:
        return 'expected ";"'
    if kind.endswith("identifier"):
        return "expected a name"
    return "expected " + kind.strip("_").replace("_", " ")


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
        if child.type == "jsx_opening_element" and not any(
                later.type == "jsx_closing_element" for later in children[index + 1:]):
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
    end = min(token.end_byte, max(line_end(source, token.start_byte), token.start_byte + 1))  # its first line
    return SyntaxProblem(token.start_byte, end, f"unexpected {_quoted(token_text(token, source))}")


def _quoted(token: str) -> str:
    return f'"{token}"'
