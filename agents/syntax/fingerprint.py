"""What a piece of code does, as a hash: its tokens, without comments, layout and (in Python) type annotations.

A review looks for bugs — wrong logic, crashes, leaks, security holes. An edit that only re-indents, re-wraps,
comments or annotates code cannot add one, so it must not cost a request: the on-save review drops hunks whose code
has the fingerprint it had at HEAD, and keys its cache by the fingerprint, so a unit that was only re-annotated or
re-commented since its last review keeps that review. (Other languages' type annotations are kept: there they are
part of what the code does.)
"""

from __future__ import annotations

import hashlib

import tree_sitter

from .snapshot import DocumentSnapshot

_ANNOTATIONS = {
    "python": frozenset({("typed_parameter", "type"), ("typed_default_parameter", "type"),
                         ("function_definition", "return_type"), ("assignment", "type")}),
}
"""(node type, field) pairs whose child is a type annotation, per language."""
_UNANNOTATED = {
    "python": {"typed_parameter": None, "typed_default_parameter": "default_parameter"},
}
"""What an annotated node is without its annotation: another node type, or None for just its content."""
_ANNOTATION_MARKS = frozenset({b":", b"->"})
_CLOSE = object()


def code_tokens(snapshot: DocumentSnapshot, start_byte: int, end_byte: int) -> list[bytes]:
    """The tree's structure and leaf tokens overlapping ``[start_byte, end_byte)``, without comments and annotations.

    Named nodes open and close (``(block`` ... ``)``), so that moving a statement out of a block, which changes no
    token in Python, changes the fingerprint; a node's opening (closing) counts only when it lies within the range,
    so the nodes around a range that contain all of it leave no mark."""
    if snapshot.tree is None or snapshot.language is None:
        return snapshot.source[start_byte:end_byte].split()
    comments = snapshot.language.comment_types
    annotations = _ANNOTATIONS.get(snapshot.language_name or "", frozenset())
    unannotated = _UNANNOTATED.get(snapshot.language_name or "", {})
    tokens: list[bytes] = []
    stack: list[object] = [snapshot.tree.root_node]
    while stack:
        node = stack.pop()
        if node is _CLOSE:
            tokens.append(b")")
            continue
        assert isinstance(node, tree_sitter.Node)
        if node.end_byte <= start_byte or node.start_byte >= end_byte or node.type in comments:
            continue
        if node.child_count == 0:
            tokens.append(snapshot.source[node.start_byte:node.end_byte])
            continue
        kept: list[tree_sitter.Node] = []
        for index, child in enumerate(node.children):
            if (node.type, node.field_name_for_child(index)) in annotations:
                if kept and not kept[-1].is_named and _text(snapshot, kept[-1]) in _ANNOTATION_MARKS:
                    kept.pop()  # the ':' or '->' that introduces the annotation
                continue
            kept.append(child)
        kind = unannotated.get(node.type, node.type) if annotations else node.type
        if kind is not None and node.is_named:
            if node.start_byte >= start_byte:
                tokens.append(b"(" + kind.encode())
            if node.end_byte <= end_byte:
                stack.append(_CLOSE)
        stack.extend(reversed(kept))
    return tokens


def fingerprint(snapshot: DocumentSnapshot, start_byte: int, end_byte: int) -> str:
    """A hash of :func:`code_tokens`: equal for two pieces of code that differ only in layout, comments and
    annotations."""
    return hashlib.sha256(b"\0".join(code_tokens(snapshot, start_byte, end_byte))).hexdigest()


def _text(snapshot: DocumentSnapshot, node: tree_sitter.Node) -> bytes:
    return snapshot.source[node.start_byte:node.end_byte]
