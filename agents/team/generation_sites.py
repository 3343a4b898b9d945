"""Where "Generate code" makes sense, read off the tree at the cursor — cheap, no model involved.

- a *stub*: a function whose body is only ``pass``, ``...``, a docstring, ``raise NotImplementedError`` or a TODO
  comment (or ``{}`` / a ``todo!()`` in braces languages) — the whole function is rewritten with its signature kept;
- a *comment* on its own line that asks for something (``# TODO: ...``, ``// parse the header``) with nothing but
  blank lines or the end of the block after it — code is inserted below it;
- a *cursor*: anywhere else, for inline completion — code is inserted at the cursor.
"""

from __future__ import annotations

import re

import tree_sitter

from ..syntax.code_units import enclosing_unit_node, unit_node_at
from ..syntax.snapshot import DocumentSnapshot
from .payloads import GenerateRequest

_STUB_STATEMENTS = re.compile(
    rb"^(pass|\.\.\.|raise NotImplementedError(\(.*\))?|todo!\(\)|unimplemented!\(\)|"
    rb"throw new (Error|UnsupportedOperationException)\(.*\);?|return;?|//.*|#.*|/\*.*\*/)$")
_FUNCTION_TYPES = frozenset({
    "function_definition", "function_declaration", "method_definition", "method_declaration", "function_item",
    "constructor_declaration", "generator_function_declaration",
})
_DOCSTRING = re.compile(rb'^[rRuUbB]?("""|\'\'\'|"|\').*\1$', re.S)


def _body_lines(snapshot: DocumentSnapshot, body: tree_sitter.Node) -> list[bytes]:
    text = snapshot.source[body.start_byte:body.end_byte].strip()
    if text.startswith(b"{") and text.endswith(b"}"):
        text = text[1:-1]
    return [line.strip() for line in text.splitlines() if line.strip()]


def is_stub(snapshot: DocumentSnapshot, function: tree_sitter.Node) -> bool:
    """Whether a function's body holds nothing but placeholders (and perhaps its docstring)."""
    if function.type == "decorated_definition":
        function = function.child_by_field_name("definition") or function
    body = function.child_by_field_name("body")
    if body is None:
        return False
    lines = _body_lines(snapshot, body)
    if body.named_child_count and body.named_children[0].type == "expression_statement":
        first = body.named_children[0]
        text = snapshot.source[first.start_byte:first.end_byte].strip()
        if _DOCSTRING.match(text):
            docstring_lines = len(text.splitlines())
            lines = lines[docstring_lines:]
    return all(_STUB_STATEMENTS.match(line) for line in lines)


def _comment_at(snapshot: DocumentSnapshot, offset: int) -> tree_sitter.Node | None:
    """The comment that starts the cursor's line (a comment on its own line), if any."""
    if snapshot.tree is None or snapshot.language is None:
        return None
    line_bytes = snapshot.lines.line_bytes(snapshot.source, snapshot.lines.line_of(offset))
    if not line_bytes.strip():
        return None
    first = snapshot.lines.line_start(snapshot.lines.line_of(offset)) + len(line_bytes) - len(line_bytes.lstrip())
    node = snapshot.tree.root_node.descendant_for_byte_range(first, first + 1)
    if node is not None and node.type in snapshot.language.comment_types and node.start_byte == first:
        return node
    return None


def generation_site(snapshot: DocumentSnapshot, offset: int, allow_cursor: bool = False) -> GenerateRequest | None:
    """The generation request that fits the cursor at byte ``offset``, or None when generating makes no sense."""
    if snapshot.tree is None:
        return None
    comment = _comment_at(snapshot, offset)
    if comment is not None:
        instruction = snapshot.source[comment.start_byte:comment.end_byte].decode("utf-8", "replace")
        instruction = re.sub(r"^(#+|//+|/\*+)\s*", "", instruction).rstrip("*/ ").strip()
        if instruction:
            line_end = snapshot.source.find(b"\n", comment.end_byte)
            line_end = len(snapshot.source) if line_end == -1 else line_end
            if snapshot.source[line_end - 1:line_end] == b"\r":
                line_end -= 1
            return GenerateRequest(snapshot, line_end, line_end, instruction, "comment")
    unit = unit_node_at(snapshot, offset, offset)
    while unit is not None:
        inner = unit.child_by_field_name("definition") if unit.type == "decorated_definition" else unit
        if inner is not None and inner.type in _FUNCTION_TYPES:
            if is_stub(snapshot, unit):
                name = inner.child_by_field_name("name")
                label = snapshot.source[name.start_byte:name.end_byte].decode() if name is not None else "function"
                return GenerateRequest(snapshot, unit.start_byte, unit.end_byte, f"implement {label}", "stub")
            break
        unit = enclosing_unit_node(snapshot, unit)
    if allow_cursor:
        return GenerateRequest(snapshot, offset, offset, "complete the code at the cursor", "cursor")
    return None
