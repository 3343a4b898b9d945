"""Examples diagnosis writes from a docstring and a diagnostic, asked as data and run as data.

The model answers ``{"call": "mean([2, 4])", "returns": "3.0"}``: a call of the function under repair whose every
argument is a Python literal, and the literal it should return. Nothing of it is ever executed as code: the call is
parsed here (``ast``, never evaluated), checked to call exactly that function with literals, and handed to the
sandbox as argument text that it parses with ``ast.literal_eval``. A malformed or non-literal example is dropped.
Small models get expected values wrong fairly often, so a written example ranks candidates and sends a failing one
back to generation with what it gave; it never, alone, withholds the only fix there is.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence

from ..edits.sandbox import call_functions
from ..syntax.code_units import python_function_at
from ..syntax.snapshot import DocumentSnapshot
from .payloads import WrittenExample

MAX_EXAMPLES = 3
EXAMPLES_SCHEMA = {
    "type": "array",
    "maxItems": MAX_EXAMPLES,
    "items": {
        "type": "object",
        "properties": {"call": {"type": "string", "maxLength": 160}, "returns": {"type": "string", "maxLength": 120}},
        "required": ["call", "returns"],
    },
}


def function_name_at(snapshot: DocumentSnapshot, start: int, end: int) -> str | None:
    """The name of the Python function around ``[start, end)`` (examples can be run only for one), else None."""
    function = python_function_at(snapshot, start, end)
    name = function.child_by_field_name("name") if function is not None else None
    return snapshot.source[name.start_byte:name.end_byte].decode("utf-8", "replace") if name is not None else None


def parse_examples(raw: object, function_name: str | None) -> tuple[WrittenExample, ...]:
    """The usable examples of the model's ``examples`` field (see the module docstring)."""
    if function_name is None or not isinstance(raw, list):
        return ()
    found: list[WrittenExample] = []
    for item in raw[:MAX_EXAMPLES]:
        if isinstance(item, dict):
            example = _example(str(item.get("call") or ""), item.get("returns"), function_name)
            if example is not None and example not in found:
                found.append(example)
    return tuple(found)


def _example(call: str, returns: object, function_name: str) -> WrittenExample | None:
    expected = returns if isinstance(returns, str) else repr(returns)
    try:
        node = ast.parse(call.strip(), mode="eval").body
        ast.literal_eval(expected.strip())
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError):
        return None
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == function_name):
        return None
    parts: list[str] = []
    for value in [*node.args, *(keyword.value for keyword in node.keywords)]:
        try:
            ast.literal_eval(value)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return None
    for argument in node.args:
        parts.append(ast.unparse(argument))
    for keyword in node.keywords:
        if keyword.arg is None:
            return None
        parts.append(f"{keyword.arg}={ast.unparse(keyword.value)}")
    return WrittenExample(", ".join(parts), expected.strip())


async def run_written(module_source: str, function_name: str, examples: Sequence[WrittenExample],
                      module_path: str | None, timeout_s: float) -> tuple[int, tuple[str, ...], int]:
    """Run the examples on the module: (passed, what the failing ones gave, how many really ran)."""
    outcomes = await call_functions(module_source, function_name, [(e.args, e.expected) for e in examples],
                                    timeout_s=timeout_s, module_path=module_path)
    passed, failures, ran = 0, [], 0
    for example, outcome in zip(examples, outcomes, strict=True):
        if not outcome.ran:
            continue
        ran += 1
        if outcome.matches:
            passed += 1
        else:
            failures.append(f"{outcome.describe(example.call(function_name))}, expected {example.expected}")
    return passed, tuple(failures), ran
