"""The one-token edits worth trying on an ERROR, most likely first.

Where a token is missing, the parser usually noticed a little later: at the end of the line (``def f(x)`` then a
new line), at the end of the ERROR, or just before it. What is missing is usually a separator (``:``, ``;``,
``,``), the closer of a bracket left open, or an operand; what is extra is usually a closer that closes nothing or a
token the parser could not place. :func:`trial_edits` lists those edits in the order a person most often needs
them; :mod:`.syntax_repair` tries them.
"""

from __future__ import annotations

from dataclasses import dataclass

import tree_sitter

from .tokens import CLOSERS, OPENERS, bracket_balance, cursor_node, line_end, line_start, tokens_between

PLACEHOLDER = " x"
"""A name to stand in for a missing operand; the space keeps it from gluing onto a keyword."""
_MAX_SCAN_BYTES = 4000
_MAX_LINE_ENDS = 4
_MAX_NESTED = 2
_MAX_VISITS = 200
_DELETIONS_TRIED = 3


@dataclass(frozen=True)
class TrialEdit:
    """Replace ``source[start:end]`` by ``insert``: an insertion when ``start == end``, a deletion when no insert."""

    start: int
    end: int
    insert: str


@dataclass(frozen=True)
class ErrorTokens:
    """The tokens of one ERROR and what a bracket count over its statement says about them."""

    node: tree_sitter.Node
    inside: list[tree_sitter.Node]
    unclosed_inside: list[tree_sitter.Node]
    """Openers from the ERROR's first line on that nothing closes, innermost last."""
    unclosed_before: list[tree_sitter.Node]
    """Openers earlier in the statement that nothing closes, innermost last."""
    stray: list[tree_sitter.Node]
    """Closers in the ERROR that close nothing."""


def scan_error(node: tree_sitter.Node, root: tree_sitter.Node, source: bytes, statement: int) -> ErrorTokens:
    """The tokens of ``node``, bracket-counted from ``statement`` (where its statement starts) to its end."""
    if node.end_byte - statement <= _MAX_SCAN_BYTES:
        tokens = tokens_between(root, statement, node.end_byte)
    else:
        tokens = tokens_between(root, statement, statement + _MAX_SCAN_BYTES // 2)
        tail_start = max(line_start(source, node.end_byte - 1), tokens[-1].end_byte if tokens else statement)
        tokens += tokens_between(root, tail_start, node.end_byte)
    unclosed, stray = bracket_balance(tokens)
    first_line = line_start(source, node.start_byte)
    return ErrorTokens(
        node,
        [token for token in tokens if token.start_byte >= node.start_byte],
        [token for token in unclosed if token.start_byte >= first_line],
        [token for token in unclosed if token.end_byte <= node.start_byte],
        [token for token in stray if token.start_byte >= node.start_byte],
    )


def trial_edits(tokens: ErrorTokens, source: bytes, separators: list[str]) -> list[TrialEdit]:
    """Edits worth trying on one ERROR, most likely first, without duplicates."""
    node, inside = tokens.node, tokens.inside
    if not inside:
        return [TrialEdit(node.start_byte, node.start_byte, token) for token in (*separators, PLACEHOLDER)]
    first_line_end = line_end(source, inside[0].start_byte)
    head_tokens = [token for token in inside if token.start_byte < first_line_end]
    head, tail = head_tokens[-1].end_byte, inside[-1].end_byte
    edits = [TrialEdit(token.start_byte, token.end_byte, "") for token in tokens.stray[:1]]
    if tokens.unclosed_inside:
        opener = tokens.unclosed_inside[-1]
        closer = OPENERS[opener.type]
        ends = [end for end in reversed(_line_ends(inside, source)) if end > opener.end_byte][:_MAX_LINE_ENDS]
        after_opener = [token.end_byte for token in inside if token.start_byte >= opener.end_byte][:1]
        edits += [TrialEdit(point, point, closer) for point in (*ends, *after_opener)]
    if tokens.unclosed_before:
        closer = OPENERS[tokens.unclosed_before[-1].type]
        edits.append(TrialEdit(node.start_byte, node.start_byte, closer))
    points = [*_nested_points(node, inside, source), head, node.start_byte]
    if len(inside) > 1:
        points += [inside[0].end_byte, inside[-1].start_byte]
    points.append(tail)
    edits += [TrialEdit(point, point, separator) for point in dict.fromkeys(points) for separator in separators]
    edits += [TrialEdit(point, point, PLACEHOLDER) for point in dict.fromkeys([head, tail])]
    edits += [TrialEdit(token.start_byte, token.end_byte, "") for token in reversed(head_tokens[-_DELETIONS_TRIED:])]
    edits += [TrialEdit(point, point, closer) for point in dict.fromkeys([head, tail]) for closer in sorted(CLOSERS)]
    return list(dict.fromkeys(edits))


def _line_ends(tokens: list[tree_sitter.Node], source: bytes) -> list[int]:
    """The end of the last token on each line the tokens cover, in order."""
    ends: list[int] = []
    current_line_end = -1
    for token in tokens:
        if token.start_byte > current_line_end:
            ends.append(token.end_byte)
        else:
            ends[-1] = token.end_byte
        current_line_end = line_end(source, token.end_byte - 1)
    return ends


def _nested_points(node: tree_sitter.Node, inside: list[tree_sitter.Node], source: bytes) -> list[int]:
    """Ends of the first line and ends of the ERRORs nested in ``node``: a big ERROR often hides a small one."""
    points: list[int] = []
    for nested in _nested_errors(node):
        own = [token for token in inside if nested.start_byte <= token.start_byte < nested.end_byte]
        if own:
            first_end = line_end(source, own[0].start_byte)
            points += [[token for token in own if token.start_byte < first_end][-1].end_byte, own[-1].end_byte]
    return points


def _nested_errors(node: tree_sitter.Node) -> list[tree_sitter.Node]:
    found: list[tree_sitter.Node] = []
    cursor = node.walk()
    visits = 0
    if not cursor.goto_first_child():
        return found
    while visits < _MAX_VISITS and len(found) < _MAX_NESTED:
        visits += 1
        current = cursor_node(cursor)
        if current.is_error:
            found.append(current)
        elif current.has_error and cursor.goto_first_child():
            continue
        while not cursor.goto_next_sibling():
            if not cursor.goto_parent():  # the cursor never climbs above ``node``
                return found
    return found
