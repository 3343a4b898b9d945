"""One-token repairs: the variants of a function that differ from it by one small change people often get wrong.

Studies of real bug fixes find that a large share change one token or one expression (ManySStuBs4J's "simple stupid
bugs": a wrong comparison or arithmetic operator, a constant off by one, a dropped or extra negation, swapped
arguments or operands, the wrong variable). Where the function's examples may run, trying every such variant costs
seconds and no model call; this module only lists them (tree-sitter, Python, nothing is run), and
:mod:`.variant_trials` runs them. They come nearest-first to the suspect lines, so a budget goes where diagnosis
pointed; a variant is an edit of one node's bytes, never of anything outside the function.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from tree_sitter import Node

_ORDER = ("<", "<=", ">", ">=")
_SWAPS: dict[str, tuple[str, ...]] = {
    **{op: tuple(other for other in _ORDER if other != op) for op in _ORDER},
    "==": ("!=",), "!=": ("==",), "is": ("is not",), "is not": ("is",), "in": ("not in",), "not in": ("in",),
    "and": ("or",), "or": ("and",),
}
_ARITHMETIC = ("+", "-", "*", "/", "//", "%")
for _group in (_ARITHMETIC, ("<<", ">>"), ("&", "|", "^")):
    for _op in _group:
        _SWAPS[_op] = tuple(other for other in _group if other != _op)
        _SWAPS[_op + "="] = tuple(other + "=" for other in _group if other != _op)
_NOT_COMMUTATIVE = {"-", "/", "//", "%", "**", "<<", ">>"}
_OPERATOR_PARENTS = {"comparison_operator", "binary_operator", "boolean_operator", "augmented_assignment"}
_CONDITIONS = {"if_statement", "elif_clause", "while_statement"}
_NOT_A_VALUE = {"function", "name", "attribute", "alias", "parameters", "keyword_argument"}
"""Fields whose identifier is not a variable read here (a called name, a definition's name, ``x.attr``'s attr)."""


@dataclass(frozen=True)
class TokenEdit:
    """Replace ``[start_byte, end_byte)`` of the document with ``new_text``; ``what`` says it for a person."""

    start_byte: int
    end_byte: int
    new_text: str
    what: str


def one_token_edits(source: bytes, function: Node, suspect_lines: tuple[int, int] | None = None,
                    limit: int = 400) -> list[TokenEdit]:
    """The one-token variants of ``function`` (a tree-sitter ``function_definition``), nearest first to
    ``suspect_lines`` (0-based, inclusive), then operators before constants before names; at most ``limit``."""
    body = function.child_by_field_name("body")
    if body is None:
        return []
    names = _local_names(source, function)
    found: dict[tuple[int, int, str], tuple[int, TokenEdit]] = {}
    for rank, edit in _variants(source, body, names):
        key = (edit.start_byte, edit.end_byte, edit.new_text)
        if source[edit.start_byte:edit.end_byte].decode("utf-8", "replace") != edit.new_text and key not in found:
            found[key] = (rank, edit)
    first, last = suspect_lines if suspect_lines is not None else (0, 0)

    def distance(edit: TokenEdit) -> int:
        line = source.count(b"\n", 0, edit.start_byte)
        return 0 if suspect_lines is None or first <= line <= last else min(abs(line - first), abs(line - last))

    ordered = sorted(found.values(), key=lambda item: (distance(item[1]), item[0], item[1].start_byte))
    return [edit for _, edit in ordered[:limit]]


def _variants(source: bytes, body: Node, names: list[str]) -> Iterator[tuple[int, TokenEdit]]:
    for node in _walk(body):
        if node.type in ("function_definition", "class_definition", "lambda"):
            continue  # a nested definition is its own unit (its names are not this function's)
        line = source.count(b"\n", 0, node.start_byte) + 1
        text = _text(source, node)
        if not node.is_named and node.parent is not None and node.parent.type in _OPERATOR_PARENTS:
            for other in _SWAPS.get(text, ()):
                yield 0, TokenEdit(node.start_byte, node.end_byte, other, f"`{text}` -> `{other}` on line {line}")
        elif node.type == "binary_operator":
            yield from _swapped_operands(source, node, line)
        elif node.type == "not_operator" and (argument := node.child_by_field_name("argument")) is not None:
            yield 1, TokenEdit(node.start_byte, node.end_byte, _text(source, argument),
                               f"`not` dropped on line {line}")
        elif node.type in _CONDITIONS and (condition := node.child_by_field_name("condition")) is not None:
            if condition.type != "not_operator":
                yield 1, TokenEdit(condition.start_byte, condition.end_byte, f"not ({_text(source, condition)})",
                                   f"condition negated on line {line}")
        elif node.type == "integer" and text.isdigit() and int(text) < 10_000:
            for shifted in dict.fromkeys((int(text) + 1, max(int(text) - 1, 0))):
                yield 2, TokenEdit(node.start_byte, node.end_byte, str(shifted),
                                   f"`{text}` -> `{shifted}` on line {line}")
        elif node.type in ("true", "false"):
            other = "False" if node.type == "true" else "True"
            yield 2, TokenEdit(node.start_byte, node.end_byte, other, f"`{text}` -> `{other}` on line {line}")
        elif node.type == "unary_operator" and text.startswith("-") and (operand := node.child_by_field_name(
                "argument")) is not None:
            yield 2, TokenEdit(node.start_byte, node.end_byte, _text(source, operand), f"`-` dropped on line {line}")
        elif node.type == "argument_list":
            yield from _swapped_arguments(source, node, line)
        elif node.type == "identifier" and _is_value(node) and text in names:
            for other in names:
                if other != text:
                    yield 4, TokenEdit(node.start_byte, node.end_byte, other, f"`{text}` -> `{other}` on line {line}")
            if node.parent is not None and node.parent.type == "subscript":
                for shift in (" + 1", " - 1"):
                    yield 3, TokenEdit(node.start_byte, node.end_byte, text + shift,
                                       f"`{text}` -> `{text}{shift}` on line {line}")


def _swapped_operands(source: bytes, node: Node, line: int) -> Iterator[tuple[int, TokenEdit]]:
    left, operator, right = (node.child_by_field_name(field) for field in ("left", "operator", "right"))
    if left is None or operator is None or right is None or _text(source, operator) not in _NOT_COMMUTATIVE:
        return
    swapped = f"{_text(source, right)} {_text(source, operator)} {_text(source, left)}"
    yield 1, TokenEdit(node.start_byte, node.end_byte, swapped, f"operands of `{_text(source, operator)}` swapped "
                                                                 f"on line {line}")


def _swapped_arguments(source: bytes, node: Node, line: int) -> Iterator[tuple[int, TokenEdit]]:
    arguments = [child for child in node.named_children if child.type != "comment"]
    if any(child.type in ("keyword_argument", "list_splat", "dictionary_splat") for child in arguments):
        return
    for left, right in zip(arguments, arguments[1:], strict=False):
        swapped = _text(source, right) + source[left.end_byte:right.start_byte].decode("utf-8", "replace") + \
            _text(source, left)
        yield 1, TokenEdit(left.start_byte, right.end_byte, swapped,
                           f"arguments `{_text(source, left)}` and `{_text(source, right)}` swapped on line {line}")


def _local_names(source: bytes, function: Node) -> list[str]:
    """The function's parameters and the names it assigns, in order of first appearance: the variables a wrong
    variable could have been meant as."""
    names: list[str] = []
    parameters = function.child_by_field_name("parameters")
    for node in _walk(parameters) if parameters is not None else ():
        if node.type == "identifier" and (node.parent is None or node.parent.type != "type"):
            names.append(_text(source, node))
    body = function.child_by_field_name("body")
    for node in _walk(body) if body is not None else ():
        assigns = node.type in ("assignment", "augmented_assignment", "for_statement", "for_in_clause")
        target = node.child_by_field_name("left") if assigns else None
        if target is not None:
            names += [_text(source, n) for n in _walk(target) if n.type == "identifier" and _is_value(n)]
    return list(dict.fromkeys(name for name in names if name not in ("self", "cls")))


def _is_value(node: Node) -> bool:
    parent = node.parent
    if parent is None:
        return False
    for field in _NOT_A_VALUE:
        child = parent.child_by_field_name(field)
        if child is not None and child.id == node.id:
            return False
    return parent.type not in ("parameters", "default_parameter", "typed_parameter", "dotted_name",
                               "import_from_statement", "global_statement", "nonlocal_statement")


def _walk(node: Node) -> Iterator[Node]:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        if current is not node and current.type in ("function_definition", "class_definition", "lambda"):
            continue
        stack.extend(reversed(current.children))


def _text(source: bytes, node: Node) -> str:
    return source[node.start_byte:node.end_byte].decode("utf-8", "replace")
