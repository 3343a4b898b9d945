"""The smallest context that holds an answer, cut from the shared tree.

A model's cost and its confusion both grow with the prompt, and a small local model pays ~10 ms per prompt token.
So a question about one function sends that function, the file's imports, and the signatures (not bodies) of the
other functions and classes of the file that it uses. A small file is sent whole.
"""

from __future__ import annotations

from dataclasses import dataclass

import tree_sitter

from ..syntax.code_units import code_units, unit_node_at
from ..syntax.snapshot import DocumentSnapshot

SMALL_FILE_BYTES = 2500
_IMPORT_TYPES = frozenset({
    "import_statement", "import_from_statement", "future_import_statement",  # python, js/ts
    "import_declaration", "use_declaration", "package_clause", "package_declaration",  # go, java, rust
})
_NAME_TYPES = frozenset({"identifier", "type_identifier", "field_identifier", "property_identifier"})
_MAX_IMPORT_CHARS = 1200


@dataclass(frozen=True)
class PromptContext:
    """What an agent shows the model: the code in question and the few facts around it."""

    language: str
    focus: str
    """The unit (or the whole small file) the question is about."""
    imports: str
    signatures: str
    whole_file: bool

    def render(self, include_focus: bool = True) -> str:
        """The context as prompt text; without the focus when the question shows the code itself (review)."""
        parts = []
        if self.imports and not self.whole_file:
            parts.append(f"Imports of the file:\n```{self.language}\n{self.imports}\n```")
        if self.signatures and not self.whole_file:
            parts.append(f"Other definitions it uses (signatures only):\n```{self.language}\n{self.signatures}\n```")
        if include_focus:
            label = "The file" if self.whole_file else "The code"
            parts.append(f"{label}:\n```{self.language}\n{self.focus}\n```")
        return "\n\n".join(parts)


def _text(snapshot: DocumentSnapshot, node: tree_sitter.Node) -> str:
    return snapshot.source[node.start_byte:node.end_byte].decode("utf-8", "surrogatepass")


def _imports(snapshot: DocumentSnapshot, names: set[str] | None = None) -> str:
    """The file's imports; with ``names``, only the Python imports that bind one of them (others are kept whole)."""
    if snapshot.tree is None:
        return ""
    lines = [_text(snapshot, child) for child in snapshot.tree.root_node.named_children
             if child.type in _IMPORT_TYPES and _wanted(snapshot, child, names)]
    text = "\n".join(lines)
    return text if len(text) <= _MAX_IMPORT_CHARS else text[:_MAX_IMPORT_CHARS].rsplit("\n", 1)[0] + "\n..."


def _wanted(snapshot: DocumentSnapshot, node: tree_sitter.Node, names: set[str] | None) -> bool:
    if names is None:
        return True
    bound = _binds(snapshot, node)
    return bound is None or bool(bound & names)


def _binds(snapshot: DocumentSnapshot, node: tree_sitter.Node) -> frozenset[str] | None:
    """The names a Python import statement binds (``import a.b`` binds ``a``, ``... as c`` binds ``c``); None for
    other languages' imports and for ``*`` (they are kept)."""
    if node.type not in ("import_statement", "import_from_statement", "future_import_statement") or any(
            child.type == "wildcard_import" for child in node.named_children):
        return None
    bound = set()
    for child in node.children_by_field_name("name"):
        if child.type == "aliased_import":
            child = child.child_by_field_name("alias") or child
        first = child.named_children[0] if child.type == "dotted_name" and child.named_children else child
        bound.add(_text(snapshot, first))
    return frozenset(bound)


def _names_in(snapshot: DocumentSnapshot, start_byte: int, end_byte: int) -> set[str]:
    """The identifiers within ``[start_byte, end_byte)``."""
    names: set[str] = set()
    stack = [snapshot.tree.root_node] if snapshot.tree is not None else []
    while stack:
        current = stack.pop()
        if current.end_byte <= start_byte or current.start_byte >= end_byte:
            continue
        if current.type in _NAME_TYPES and start_byte <= current.start_byte:
            names.add(snapshot.source[current.start_byte:current.end_byte].decode("utf-8", "replace"))
        stack.extend(current.named_children)
    return names


def _names_used(node: tree_sitter.Node, source: bytes) -> set[str]:
    names: set[str] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type in _NAME_TYPES:
            names.add(source[current.start_byte:current.end_byte].decode("utf-8", "replace"))
        stack.extend(current.named_children)
    return names


def signature_of(snapshot: DocumentSnapshot, start_byte: int, end_byte: int) -> str:
    """A definition's header: its text up to where its body starts (``def f(a) -> int:``, ``fn f(a: u8) {``)."""
    node = snapshot.tree.root_node.descendant_for_byte_range(start_byte, end_byte) if snapshot.tree else None
    while node is not None and (node.start_byte != start_byte or node.end_byte != end_byte):
        node = node.parent
    body = node.child_by_field_name("body") if node is not None else None
    if node is not None and node.type == "decorated_definition":
        definition = node.child_by_field_name("definition")
        body = definition.child_by_field_name("body") if definition is not None else None
    end = body.start_byte if body is not None else snapshot.source.find(b"\n", start_byte)
    header = snapshot.source[start_byte:end if end > 0 else end_byte].decode("utf-8", "replace").rstrip()
    return header + (" ..." if body is not None else "")


def context_for(snapshot: DocumentSnapshot, start_byte: int, end_byte: int) -> PromptContext:
    """Context for a question about ``[start_byte, end_byte)``: its enclosing unit, imports and used signatures."""
    language = snapshot.language_name or "text"
    if len(snapshot.source) <= SMALL_FILE_BYTES or snapshot.tree is None:
        return PromptContext(language, snapshot.text, "", "", True)
    unit = unit_node_at(snapshot, start_byte, end_byte)
    if unit is None:
        line = snapshot.lines.line_of(start_byte)
        first = max(line - 15, 0)
        last = min(snapshot.lines.line_of(end_byte) + 15, snapshot.lines.line_count)
        focus_start, focus_end = snapshot.lines.line_start(first), snapshot.lines.line_start(last)
        names: set[str] = set()
    else:
        focus_start, focus_end = unit.start_byte - unit.start_point[1], unit.end_byte
        names = _names_used(unit, snapshot.source)
    focus = snapshot.source[focus_start:focus_end].decode("utf-8", "surrogatepass")
    signatures = [
        signature_of(snapshot, other.start_byte, other.end_byte)
        for other in code_units(snapshot)
        if other.name in names and not (focus_start <= other.start_byte < focus_end)
    ]
    return PromptContext(language, focus, _imports(snapshot), "\n".join(signatures), False)


def review_context(snapshot: DocumentSnapshot, start_byte: int, end_byte: int) -> PromptContext:
    """Context for reviewing the code ``[start_byte, end_byte)``, which the question shows itself: only the imports
    it uses and the signatures of the file's other definitions it uses. A review is asked for every changed unit on
    every save, so every token here is paid again and again."""
    language = snapshot.language_name or "text"
    if snapshot.tree is None:
        return PromptContext(language, "", "", "", False)
    units = code_units(snapshot)
    inside = [unit for unit in units if start_byte <= unit.start_byte < end_byte]
    names = _names_in(snapshot, start_byte, end_byte) - {unit.name for unit in inside}  # its own name is no use
    signatures = dict.fromkeys(
        signature_of(snapshot, other.start_byte, other.end_byte)
        for other in units
        if other.name in names and not (start_byte <= other.start_byte < end_byte)
    )
    return PromptContext(language, "", _imports(snapshot, names), "\n".join(signatures), False)
