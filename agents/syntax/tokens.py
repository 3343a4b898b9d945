"""The tokens of a tree-sitter tree as a person sees them, and the lines they sit on.

A token is a leaf of the tree, except that a whole string literal or comment counts as one token: a bracket inside a
string is no bracket. Syntax diagnostics walk tokens around an error to find the one that went wrong; these
walks move a tree cursor from the error outwards, so their cost depends on the distance walked, not on the file.
"""

from __future__ import annotations

from collections.abc import Iterator

import tree_sitter

OPENERS = {"(": ")", "[": "]", "{": "}", "${": "}", "#{": "}"}
CLOSERS = frozenset({")", "]", "}"})
_QUOTE_TYPES = frozenset({'"', "'", "`", '"""', "'''", "string_start", "raw_string_start"})


def cursor_node(cursor: tree_sitter.TreeCursor) -> tree_sitter.Node:
    """The node ``cursor`` stands on. A cursor walked from a node always stands on one; the binding's type says
    ``Node | None``, so this is where that is checked, once, with an error that says what went wrong."""
    node = cursor.node
    if node is None:
        raise ValueError("the tree cursor stands on no node (it was not made by Node.walk())")
    return node


def is_atomic(node: tree_sitter.Node) -> bool:
    """Whether ``node`` reads as one token: a leaf, a comment, or a complete string literal."""
    if node.child_count == 0:
        return True
    if node.is_error:
        return False
    if node.is_extra:
        return True
    if not node.is_named:
        return False
    kind = node.type
    return ("string" in kind or "char" in kind or "comment" in kind) and not node.has_error


def is_quote(node: tree_sitter.Node) -> bool:
    """Whether ``node`` is the opening quote of a string (a string start token or a bare quote)."""
    return node.type in _QUOTE_TYPES or node.type.endswith("string_start")


def tokens_from(root: tree_sitter.Node, offset: int) -> Iterator[tree_sitter.Node]:
    """Tokens in document order, from the first that ends after ``offset``; zero-width (MISSING) tokens skipped."""
    cursor = root.walk()
    descend = True
    while not is_atomic(cursor_node(cursor)):
        if cursor.goto_first_child_for_byte(offset) is None:
            descend = False  # every child ends before offset: resume after this node
            break
    while True:
        node = cursor_node(cursor)
        if is_atomic(node):
            if node.end_byte > offset and node.end_byte > node.start_byte:
                yield node
        elif descend and cursor.goto_first_child():
            continue
        descend = True
        while not cursor.goto_next_sibling():
            if not cursor.goto_parent():
                return


def children_between(node: tree_sitter.Node, start: int, end: int) -> Iterator[tree_sitter.Node]:
    """The children of ``node`` that overlap ``[start, end)``, found without listing all of them."""
    cursor = node.walk()  # Node.first_child_for_byte returns a dangling node when none qualifies
    if cursor.goto_first_child_for_byte(start) is None:
        return
    while (child := cursor_node(cursor)).start_byte < end:
        yield child
        if not cursor.goto_next_sibling():
            return


def tokens_between(root: tree_sitter.Node, start: int, end: int, limit: int = 400) -> list[tree_sitter.Node]:
    """At most ``limit`` tokens that overlap ``[start, end)``, comments left out."""
    found: list[tree_sitter.Node] = []
    for token in tokens_from(root, start):
        if token.start_byte >= end or len(found) >= limit:
            break
        if not token.is_extra:
            found.append(token)
    return found


def token_before(root: tree_sitter.Node, offset: int) -> tree_sitter.Node | None:
    """The last token (not a comment, not zero-width) that ends at or before ``offset``."""
    following = next(tokens_from(root, offset), None)
    node = previous_token(following) if following is not None else _last_token(root)
    while node is not None and (node.is_extra or node.end_byte > offset or node.start_byte == node.end_byte):
        node = previous_token(node)
    return node


def previous_token(node: tree_sitter.Node) -> tree_sitter.Node | None:
    """The token just before ``node`` in the document, whatever its parent."""
    current: tree_sitter.Node | None = node
    while current is not None and current.prev_sibling is None:
        current = current.parent
    if current is None:
        return None
    return _last_token(current.prev_sibling)


def _last_token(node: tree_sitter.Node | None) -> tree_sitter.Node | None:
    while node is not None and not is_atomic(node):
        node = node.children[-1] if node.child_count else None
    return node


def bracket_balance(tokens: list[tree_sitter.Node]) -> tuple[list[tree_sitter.Node], list[tree_sitter.Node]]:
    """(openers never closed, innermost last; closers that close nothing) among ``tokens``."""
    open_stack: list[tree_sitter.Node] = []
    stray: list[tree_sitter.Node] = []
    for token in tokens:
        kind = token.type
        if kind in OPENERS:
            open_stack.append(token)
        elif kind in CLOSERS:
            if open_stack and OPENERS[open_stack[-1].type] == kind:
                open_stack.pop()
            elif any(OPENERS[opener.type] == kind for opener in open_stack):
                while OPENERS[open_stack[-1].type] != kind:
                    open_stack.pop()
                open_stack.pop()
            else:
                stray.append(token)
    return open_stack, stray


def token_text(node: tree_sitter.Node, source: bytes, limit: int = 40) -> str:
    """The first line of a token's text, shortened for a message."""
    text = source[node.start_byte:node.end_byte].decode("utf-8", "replace").split("\n", 1)[0].strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- lines -----------------------------------------------------------------------------------------------------------

def line_start(source: bytes, offset: int) -> int:
    """Byte offset where the line holding ``offset`` starts (tree-sitter's rows: lines end at ``\\n``)."""
    return source.rfind(b"\n", 0, offset) + 1


def line_end(source: bytes, offset: int) -> int:
    """Byte offset of the ``\\n`` (or a ``\\r`` before it) that ends the line holding ``offset``."""
    end = source.find(b"\n", offset)
    end = len(source) if end == -1 else end
    return end - 1 if end > 0 and source[end - 1:end] == b"\r" else end


def indentation(source: bytes, start: int) -> int:
    """Width of the leading blanks of the line that starts at ``start``."""
    line = source[start:line_end(source, start)]
    return len(line) - len(line.lstrip(b" \t"))


def starts_statement(root: tree_sitter.Node, source: bytes, start: int) -> bool:
    """Whether the line at ``start`` begins a construct of its own (not inside a string, comment or expression).

    That is: its first token is the first token of a node that ends at a line end, so a window of source cut just
    before this line parses like the document does.
    """
    first = start + indentation(source, start)
    if first >= line_end(source, start):
        return False
    node = root.descendant_for_byte_range(first, first + 1)
    if node is None or node.start_byte != first or node.is_extra:
        return False
    while node.parent is not None and node.parent.start_byte == first and node.parent.parent is not None:
        node = node.parent
    if node.type in CLOSERS or node.type.endswith("_end"):
        return False
    previous = node.prev_sibling
    if previous is not None and previous.end_byte > start:
        return False
    rest = source[node.end_byte:line_end(source, node.end_byte)].strip()
    return rest in (b"", b";", b",")
