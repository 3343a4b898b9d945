"""Code units and target nodes read off the shared tree: what the agents look at and what they may change.

A *unit* is a function, method or class — what review looks at, once per content hash. A *target* is the smallest
whole-line syntax node that an edit may replace: the statement around a diagnostic, or the function whose name
the diagnostic sits on.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import tree_sitter

from .snapshot import DocumentSnapshot

_STATEMENT_SUFFIXES = ("_statement", "_definition", "_declaration", "_item", "_clause", "_specifier")


@dataclass(frozen=True)
class CodeUnit:
    """A function, method or class of a snapshot: where it is, what it is called, and a hash of its text."""

    kind: str
    name: str
    start_byte: int
    end_byte: int
    text: str
    fingerprint: str = ""
    """When set, the hash of what the code does (``code_fingerprint``): the content hash ignores layout, comments
    and annotations."""

    @property
    def content_hash(self) -> str:
        content = self.fingerprint or self.text
        return hashlib.sha256(f"{self.kind}\0{self.name}\0{content}".encode("utf-8", "surrogatepass")).hexdigest()


def _name_of(node: tree_sitter.Node, source: bytes) -> str:
    if node.type == "decorated_definition":  # a decorated function or class is named by its definition
        node = node.child_by_field_name("definition") or node
    name = node.child_by_field_name("name")
    if name is None:
        for child in node.named_children:
            if child.type in ("identifier", "type_identifier", "field_identifier", "type_spec"):
                name = child
                break
    return source[name.start_byte:name.end_byte].decode("utf-8", "replace") if name is not None else "<anonymous>"


def _unit_of(node: tree_sitter.Node, source: bytes) -> CodeUnit:
    return CodeUnit(node.type, _name_of(node, source), node.start_byte, node.end_byte,
                    source[node.start_byte:node.end_byte].decode("utf-8", "surrogatepass"))


def _with_decorators(node: tree_sitter.Node) -> tree_sitter.Node:
    parent = node.parent
    return parent if parent is not None and parent.type == "decorated_definition" else node


def code_units(snapshot: DocumentSnapshot) -> list[CodeUnit]:
    """Every function, method and class of a snapshot, outermost first, in document order."""
    if snapshot.tree is None or snapshot.language is None:
        return []
    kinds = snapshot.language.unit_types
    units: list[CodeUnit] = []
    stack = [snapshot.tree.root_node]
    while stack:
        node = stack.pop()
        if node.type in kinds:
            units.append(_unit_of(_with_decorators(node), snapshot.source))
        stack.extend(reversed(node.named_children))
    return units


def innermost_unit(snapshot: DocumentSnapshot, start_byte: int, end_byte: int) -> CodeUnit | None:
    """The smallest function/method/class containing ``[start_byte, end_byte)``, or None at module level."""
    node = unit_node_at(snapshot, start_byte, end_byte)
    return _unit_of(node, snapshot.source) if node is not None else None


def unit_node_at(snapshot: DocumentSnapshot, start_byte: int, end_byte: int) -> tree_sitter.Node | None:
    if snapshot.tree is None or snapshot.language is None:
        return None
    node = snapshot.tree.root_node.descendant_for_byte_range(start_byte, max(start_byte, end_byte))
    while node is not None:
        if node.type in snapshot.language.unit_types:
            return _with_decorators(node)
        node = node.parent
    return None


def python_function_at(snapshot: DocumentSnapshot, start_byte: int, end_byte: int) -> tree_sitter.Node | None:
    """The Python ``function_definition`` around ``[start_byte, end_byte)`` (a decorated one's definition, never its
    decorators): the code whose examples can run. None in another language, at module level or in a class body."""
    if snapshot.language_name != "python":
        return None
    node = unit_node_at(snapshot, start_byte, end_byte)
    if node is not None and node.type == "decorated_definition":
        node = node.child_by_field_name("definition")
    if node is None or node.type != "function_definition" or node.child_by_field_name("name") is None:
        return None
    return node


def enclosing_unit_node(snapshot: DocumentSnapshot, unit: tree_sitter.Node) -> tree_sitter.Node | None:
    """The unit (function, method, class) around ``unit``, or None at module level.

    Climbs by parent links, never by byte position: a nested class can start where its parent starts, and a lookup
    by position would find the same node again.
    """
    if snapshot.language is None:
        return None
    node = unit.parent
    while node is not None:
        if node.type in snapshot.language.unit_types:
            return _with_decorators(node)
        node = node.parent
    return None


def _starts_line(snapshot: DocumentSnapshot, node: tree_sitter.Node) -> bool:
    line_start = node.start_byte - node.start_point[1]
    return snapshot.source[line_start:node.start_byte].strip() == b""


def target_node(snapshot: DocumentSnapshot, start_byte: int, end_byte: int) -> tree_sitter.Node | None:
    """The smallest whole-line statement or definition containing a range; the unit when the range is its name."""
    if snapshot.tree is None or snapshot.language is None:
        return None
    node = snapshot.tree.root_node.descendant_for_byte_range(start_byte, max(start_byte, end_byte))
    if node is not None and node.parent is not None and node.parent.type in snapshot.language.unit_types and (
            node.parent.child_by_field_name("name") == node):
        return _with_decorators(node.parent)
    while node is not None and node.parent is not None:
        is_statement = node.type.endswith(_STATEMENT_SUFFIXES) or node.type in snapshot.language.unit_types
        if (is_statement or node.type == "ERROR") and _starts_line(snapshot, node):
            return _with_decorators(node)
        node = node.parent
    return node
