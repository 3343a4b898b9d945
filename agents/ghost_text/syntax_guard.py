"""The offer is checked like any edit: inserted at the cursor, it may not add syntax errors the document did not
already have. Code being typed need not parse — an offer that leaves the count of error and missing nodes where it
was (or lowers it, by finishing what the user started) passes. The tree is updated incrementally from the
snapshot's own (``tree.edit`` on a copy, then ``parse(new, old)``), so the check costs a partial re-parse.
"""

from __future__ import annotations

import tree_sitter

from ..syntax import DocumentSnapshot, encode, parser


def error_count(node: tree_sitter.Node) -> int:
    """ERROR and MISSING nodes under ``node``, skipping subtrees without errors."""
    if not node.has_error and not node.is_missing:
        return 0
    own = 1 if node.type == "ERROR" or node.is_missing else 0
    return own + sum(error_count(child) for child in node.children)


def adds_syntax_errors(snapshot: DocumentSnapshot, cursor: int, text: str, replace_bytes: int = 0) -> bool:
    """Whether inserting ``text`` at byte ``cursor`` (over ``replace_bytes`` bytes) adds syntax errors."""
    if snapshot.tree is None or snapshot.language is None:
        return False
    inserted = encode(text)
    end = cursor + replace_bytes
    new_source = snapshot.source[:cursor] + inserted + snapshot.source[end:]
    tree = snapshot.tree.copy()
    start_point = _point(snapshot.source, cursor)
    tree.edit(start_byte=cursor, old_end_byte=end, new_end_byte=cursor + len(inserted), start_point=start_point,
              old_end_point=_point(snapshot.source, end), new_end_point=_point(new_source, cursor + len(inserted)))
    new_tree = parser(snapshot.language).parse(new_source, tree)
    return error_count(new_tree.root_node) > error_count(snapshot.tree.root_node)


def _point(source: bytes, offset: int) -> tuple[int, int]:
    line_start = source.rfind(b"\n", 0, offset) + 1
    return source.count(b"\n", 0, offset), offset - line_start
