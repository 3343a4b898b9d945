"""What every edit the team offers must keep, whatever the model answered.

A patch that parses can still lose the user's code: a small model mixing up its reply formats answers a fix with
``{"findings": []}`` (a dict literal parses, the syntax error is gone, the function is gone), returns the whole
function where only its header was the target (a body line then appears twice), or writes a sentence where code
belongs. :func:`broken_invariant` names the first rule a patched document breaks, or returns ``""``:

- the reply is code: not one JSON object or array, not a line of prose outside comments and strings;
- every function, class and method the replaced code defined is still defined there, once, with the same name, and
  with the same parameters unless the diagnostic being fixed sits on that definition's header; nothing the file
  defines elsewhere is defined again;
- every other name the replaced code bound (``x = ...``, an import) that the rest of the file uses is still bound;
- the code right after the target stays where it was: in the same function or class, at the same depth of blocks
  (a reply that ends in an open header would swallow the next line into a new body);
- no line appears twice at the seams (the reply repeating the line just before or after its target), and no run of
  lines appears twice in a row inside the reply where the old code had no such run.

Names compare as text found by tree-sitter where the code parses, plus a plain ``def|class|function|fn|func NAME``
scan, so a definition whose header is broken (the usual thing to fix) still counts as defined.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator

import tree_sitter

from ..syntax.positions import decode
from ..syntax.snapshot import DocumentSnapshot

_HEADER = re.compile(r"^[ \t]*(?:export[ \t]+)?(?:pub(?:\([^)]*\))?[ \t]+)?(?:async[ \t]+)?"
                     r"(?:def|class|function|fn|func)[ \t]+(\w+)", re.MULTILINE)
_PROSE = re.compile(r"[A-Z][a-z']+(?: [A-Za-z',]+){3,}[.:!]?")
_BINDINGS = {  # statement kinds that bind a name the rest of the file can use, and the field holding the name
    "assignment": "left", "variable_declarator": "name", "let_declaration": "pattern",
    "short_var_declaration": "left", "const_spec": "name", "var_spec": "name", "aliased_import": "alias",
}
_TRIVIAL_LINES = frozenset({"return", "break", "continue", "else:", "try:", "finally:", "}", "};", ")",
                            "]", "end", "...", "});", "})", "},", "),", "],", "{", "*/"})


def broken_invariant(snapshot: DocumentSnapshot, start: int, end: int, new_text: str, new_source: bytes,
                     new_tree: tree_sitter.Tree, focus: tuple[int, int] | None = None) -> str:
    """Why replacing ``[start, end)`` of the snapshot with ``new_text`` (giving ``new_source``, parsed as
    ``new_tree``) must not be offered, or ``""``. ``focus`` is the range the diagnostic being fixed covers."""
    old_text = decode(snapshot.source[start:end])
    new_end = start + len(new_source) - len(snapshot.source) + (end - start)
    for check in (_not_code(old_text, new_text, new_tree, start, new_end),
                  _lost_definition(snapshot, start, end, new_tree, new_source, new_end, focus),
                  _lost_binding(snapshot, start, end, new_tree, new_source, new_end),
                  _repeated_seam(snapshot.source, start, end, new_text),
                  _moved_neighbour(snapshot, end, new_tree, new_end),
                  _repeated_run(old_text, new_text)):
        if check:
            return check
    return ""


# -- the reply is code ---------------------------------------------------------------------------------------------

def _not_code(old_text: str, new_text: str, new_tree: tree_sitter.Tree, start: int, new_end: int) -> str:
    if _is_json_document(new_text) and not _is_json_document(old_text):
        return "the reply is a JSON value, not code"
    old_lines = {line.strip() for line in old_text.splitlines()}
    offset = start
    for line in new_text.splitlines(keepends=True):
        stripped = line.strip()
        if stripped and stripped not in old_lines and _PROSE.fullmatch(stripped):
            first = offset + len(line.encode("utf-8", "surrogatepass")) - len(line.lstrip().encode(
                "utf-8", "surrogatepass"))
            if not _inside_comment_or_string(new_tree, first):
                return f"the reply holds prose, not code: {stripped[:60]!r}"
        offset += len(line.encode("utf-8", "surrogatepass"))
    return ""


def _is_json_document(text: str) -> bool:
    try:
        return isinstance(json.loads(text.strip()), (dict, list))
    except ValueError:
        return False


def _inside_comment_or_string(tree: tree_sitter.Tree, byte: int) -> bool:
    node: tree_sitter.Node | None = tree.root_node.descendant_for_byte_range(byte, byte + 1)
    while node is not None:
        if "comment" in node.type or "string" in node.type:
            return True
        node = node.parent
    return False


# -- definitions and bindings kept ---------------------------------------------------------------------------------

def _definitions(tree: tree_sitter.Tree, source: bytes, start: int, end: int,
                 unit_types: frozenset[str]) -> Iterator[tuple[str, tree_sitter.Node]]:
    """(nesting path, node) of every unit lying wholly inside ``[start, end)``, outermost first."""
    stack: list[tuple[tree_sitter.Node, str]] = [(tree.root_node, "")]
    while stack:
        node, path = stack.pop()
        if node.end_byte <= start or node.start_byte >= end:
            continue
        if node.type in unit_types:
            name = node.child_by_field_name("name")
            label = source[name.start_byte:name.end_byte].decode("utf-8", "replace") if name else "<anonymous>"
            path = f"{path}.{label}" if path else label
            if node.start_byte >= start and node.end_byte <= end and not node.has_error:
                yield path, node
        stack.extend((child, path) for child in reversed(node.named_children))


def _parameters(node: tree_sitter.Node, source: bytes) -> tuple[str, ...] | None:
    parameters = node.child_by_field_name("parameters")
    if parameters is None:
        return None
    names = []
    for child in parameters.named_children:
        if "comment" in child.type:
            continue
        identifier = _first_identifier(child)
        names.append(source[identifier.start_byte:identifier.end_byte].decode("utf-8", "replace")
                     if identifier is not None else child.type)
    return tuple(names)


def _first_identifier(node: tree_sitter.Node) -> tree_sitter.Node | None:
    stack = [node]
    while stack:
        current = stack.pop(0)
        if current.type == "identifier":
            return current
        stack.extend(current.named_children)
    return None


def _header_touched(node: tree_sitter.Node, focus: tuple[int, int] | None) -> bool:
    if focus is None:
        return False
    body = node.child_by_field_name("body")
    header_end = body.start_byte if body is not None else node.end_byte
    return focus[0] <= header_end and focus[1] >= node.start_byte


def _lost_definition(snapshot: DocumentSnapshot, start: int, end: int, new_tree: tree_sitter.Tree,
                     new_source: bytes, new_end: int, focus: tuple[int, int] | None) -> str:
    if snapshot.language is None or snapshot.tree is None:
        return ""
    unit_types = snapshot.language.unit_types
    old = list(_definitions(snapshot.tree, snapshot.source, start, end, unit_types))
    new = list(_definitions(new_tree, new_source, start, new_end, unit_types))
    old_names = Counter(path for path, _ in old)
    new_names = Counter(path for path, _ in new)
    old_scanned = Counter(_HEADER.findall(decode(snapshot.source[start:end])))
    new_scanned = Counter(_HEADER.findall(decode(new_source[start:new_end])))
    for name, count in old_scanned.items():
        if new_scanned[name] < count and not any(path.rsplit(".", 1)[-1] == name for path in new_names):
            return f"the proposed code does not keep the definition of {name}"
        if new_scanned[name] > count:
            return f"the proposed code defines {name} {new_scanned[name]} times where there was {count}"
    elsewhere = set(_HEADER.findall(decode(snapshot.source[:start] + snapshot.source[end:])))
    for name in new_scanned:
        if name not in old_scanned and name in elsewhere:
            return f"the proposed code defines {name} again, which the file already defines elsewhere"
    new_by_path = dict(new)
    for path, node in old:
        if new_names[path] < old_names[path]:
            return f"the proposed code does not keep the definition of {path}"
        before = _parameters(node, snapshot.source)
        after = _parameters(new_by_path[path], new_source)
        if before is not None and before != after and not _header_touched(node, focus):
            return (f"the proposed code changes the parameters of {path} from ({', '.join(before)}) to "
                    f"({', '.join(after or ())})")
    return ""


def _bound_names(tree: tree_sitter.Tree, source: bytes, start: int, end: int) -> set[str]:
    """Identifiers an assignment, declaration or import alias inside ``[start, end)`` binds (not parameters or
    keyword arguments: those are local to one call or one function)."""
    names: set[str] = set()
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.end_byte <= start or node.start_byte >= end:
            continue
        parent = node.parent
        if node.type == "identifier" and parent is not None and parent.type in _BINDINGS and (
                parent.child_by_field_name(_BINDINGS[parent.type]) == node):
            names.add(source[node.start_byte:node.end_byte].decode("utf-8", "replace"))
        stack.extend(node.named_children)
    return names


def _used_outside(tree: tree_sitter.Tree, source: bytes, start: int, end: int, names: set[str]) -> set[str]:
    used: set[str] = set()
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if start <= node.start_byte and node.end_byte <= end:
            continue
        if node.type == "identifier":
            text = source[node.start_byte:node.end_byte].decode("utf-8", "replace")
            if text in names:
                used.add(text)
        stack.extend(node.children)
    return used


def _lost_binding(snapshot: DocumentSnapshot, start: int, end: int, new_tree: tree_sitter.Tree,
                  new_source: bytes, new_end: int) -> str:
    if snapshot.tree is None or start == end:
        return ""
    bound = _bound_names(snapshot.tree, snapshot.source, start, end)
    needed = _used_outside(snapshot.tree, snapshot.source, start, end, bound)
    still = _bound_names(new_tree, new_source, start, new_end) | set(
        _HEADER.findall(decode(new_source[start:new_end])))
    lost = sorted(needed - still)
    if lost:
        return f"the proposed code no longer defines {', '.join(lost)}, which the rest of the file uses"
    return ""


# -- the code after the target stays put ---------------------------------------------------------------------------

def _placement(tree: tree_sitter.Tree, source: bytes, byte: int,
               unit_types: frozenset[str]) -> tuple[str, ...] | None:
    """Where the code at ``byte`` sits: the names of the units around it and the blocks between them; None when a
    syntax error surrounds it (where it belongs is then what the fix decides)."""
    node: tree_sitter.Node | None = tree.root_node.descendant_for_byte_range(byte, byte + 1)
    place: list[str] = []
    while node is not None:
        if node.type == "ERROR" or node.is_missing:
            return None
        if node.type in unit_types:
            name = node.child_by_field_name("name")
            place.append(source[name.start_byte:name.end_byte].decode("utf-8", "replace") if name else node.type)
        elif node.type.endswith(("block", "body", "suite")):
            place.append("{")
        node = node.parent
    return tuple(reversed(place))


def _moved_neighbour(snapshot: DocumentSnapshot, end: int, new_tree: tree_sitter.Tree, new_end: int) -> str:
    if snapshot.language is None or snapshot.tree is None:
        return ""
    rest = snapshot.source[end:]
    skipped = len(rest) - len(rest.lstrip())
    if skipped == len(rest):
        return ""
    unit_types = snapshot.language.unit_types
    new_source = new_tree.root_node.text or b""
    before = _placement(snapshot.tree, snapshot.source, end + skipped, unit_types)
    after = _placement(new_tree, new_source, new_end + skipped, unit_types)
    if before is not None and before != after:
        line = decode(rest[skipped:].split(b"\n", 1)[0]).strip()
        return f"the proposed code changes where the next line ({line[:60]!r}) belongs"
    return ""


# -- no line twice -------------------------------------------------------------------------------------------------

def _substantial(line: str) -> bool:
    return len(line) > 3 and line not in _TRIVIAL_LINES and re.search(r"\w", line) is not None


def _non_blank(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _repeated_seam(source: bytes, start: int, end: int, new_text: str) -> str:
    new_lines = _non_blank(new_text)
    if not new_lines:
        return ""
    old_lines = _non_blank(decode(source[start:end]))
    after = _non_blank(decode(source[end:end + 4000]))
    before = _non_blank(decode(source[max(0, start - 4000):start]))
    # only whole lines count: a target that starts or ends mid-line shares its line with the text around it
    if after and source[end:end + 1] not in (b"\n", b"\r", b"") and not new_text.endswith("\n"):
        after = after[1:]
    if before and start > 0 and source[start - 1:start] not in (b"\n", b"\r"):
        before = before[:-1]
    if after and new_lines[-1] == after[0] and _substantial(after[0]) and (
            not old_lines or old_lines[-1] != after[0]):
        return f"the proposed code repeats the line after it ({after[0][:60]!r}): it would appear twice"
    if before and new_lines[0] == before[-1] and _substantial(before[-1]) and (
            not old_lines or old_lines[0] != before[-1]):
        return f"the proposed code repeats the line before it ({before[-1][:60]!r}): it would appear twice"
    return ""


def _doubled_runs(lines: list[str]) -> set[tuple[str, ...]]:
    runs = set()
    for size in range(1, len(lines) // 2 + 1):
        for index in range(len(lines) - 2 * size + 1):
            run = tuple(lines[index:index + size])
            if run == tuple(lines[index + size:index + 2 * size]) and any(_substantial(line) for line in run):
                runs.add(run)
    return runs


def _repeated_run(old_text: str, new_text: str) -> str:
    new_lines = _non_blank(new_text)
    if len(new_lines) > 400:  # quadratic; a reply this long is judged by the other rules
        return ""
    doubled = _doubled_runs(new_lines) - _doubled_runs(_non_blank(old_text))
    if doubled:
        run = min(doubled, key=len)
        return f"the proposed code repeats {len(run)} lines in a row ({run[0][:40]!r} ...)"
    return ""
