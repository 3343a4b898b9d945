"""JSON replies from models that do not always write JSON: the three ways to ask, and a parser that forgives.

Endpoints differ: OpenAI takes ``response_format={"type": "json_schema", ...}``; llama.cpp's server answers that with
HTTP 500 but constrains output with ``{"type": "json_object", "schema": ...}``; others take neither. The client tries
the :data:`MODES` in order and remembers the first that works; it moves on only when the endpoint's answer names
what it refused (:func:`refuses_structured_output`), since a bare HTTP 500 is as often a passing failure. Whatever
the mode, the reply is parsed tolerantly: the first JSON value in the text, fenced or not, with trailing commas and
raw control characters inside strings forgiven (llama.cpp's schema grammar lets raw newlines through).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

MODES = ("json_schema", "json_object", "text")

_NAMES_RESPONSE_FORMAT = re.compile(r"response_format|json[_ ]?schema|json[_ ]?object", re.IGNORECASE)
_NOT_ABOUT_THE_REQUEST = frozenset({401, 403, 404, 408, 409, 429})
_FENCED = re.compile(r"```[ \t]*(?:json5?|JSON)?[ \t]*\n(.*?)```", re.DOTALL)


def response_format_for(mode: str, schema: dict, name: str = "reply") -> dict | None:
    """The ``response_format`` request field for ``mode`` (None for plain text)."""
    if mode == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": name, "schema": schema}}
    if mode == "json_object":
        return {"type": "json_object", "schema": schema}
    if mode == "text":
        return None
    raise ValueError(f"unknown structured output mode {mode!r}; expected one of {MODES}")


def refuses_structured_output(status: int | None, server_text: str) -> bool:
    """Whether an endpoint's error answer says it does not take the ``response_format`` it was sent: an HTTP error
    whose text names ``response_format``, ``json_schema`` or ``json_object`` (OpenAI-style 400 "Unrecognized request
    argument", a validation error's 422, llama.cpp's 500 "response_format type must be one of ..."). A bare 5xx, a
    rate limit, a key or model error or a timeout (no status) says nothing about the mode."""
    if status is None or status in _NOT_ABOUT_THE_REQUEST:
        return False
    return bool(_NAMES_RESPONSE_FORMAT.search(server_text))


def with_schema_instruction(messages: list[dict], schema: dict) -> list[dict]:
    """Copy ``messages`` with the schema spelled out in the last user message (for modes that do not enforce it)."""
    instruction = ("\n\nReply with only one JSON object, no prose, that matches this JSON schema:\n"
                   + json.dumps(schema, separators=(",", ":")))
    copied = [dict(m) for m in messages]
    for message in reversed(copied):
        if message.get("role") == "user":
            message["content"] = f"{message.get('content') or ''}{instruction}"
            return copied
    return copied + [{"role": "user", "content": instruction.lstrip()}]


def parse_json_reply(text: str) -> Any:
    """The first JSON object (or array) in ``text``; ValueError with a short reason when there is none."""
    stripped = text.strip()
    candidates = [stripped] + [m.group(1) for m in _FENCED.finditer(text)] + list(_balanced_spans(text))
    for candidate in candidates:
        for attempt in (candidate, _repaired(candidate)):
            try:
                return json.loads(attempt, strict=False)  # strict=False: raw newlines and tabs inside strings
            except ValueError:
                continue
    preview = stripped[:80].replace("\n", "\\n")
    raise ValueError(f"no JSON object in the reply (it starts {preview!r})")


def missing_required(value: Any, schema: dict) -> list[str]:
    """Top-level properties the schema requires that ``value`` lacks (a cheap check, not full JSON Schema)."""
    if schema.get("type") == "object" and not isinstance(value, dict):
        return ["<an object>"]
    if not isinstance(value, dict):
        return []
    return [key for key in schema.get("required", []) if key not in value]


def _balanced_spans(text: str):
    """Every ``{...}`` or ``[...]`` span whose brackets balance, outermost first, strings respected."""
    for start, char in enumerate(text):
        if char not in "{[":
            continue
        end = _matching_close(text, start)
        if end is not None:
            yield text[start: end + 1]


def _outside_strings(text: str, start: int = 0) -> Iterator[tuple[int, str]]:
    """``(index, char)`` for each character of ``text`` from ``start`` that lies outside a JSON string (the quotes
    themselves and everything between them are skipped)."""
    in_string, escaped = False, False
    for index in range(start, len(text)):
        char = text[index]
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        else:
            yield index, char


def _matching_close(text: str, start: int) -> int | None:
    depth = 0
    for index, char in _outside_strings(text, start):
        if char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
            if depth == 0:
                return index
    return None


def _repaired(text: str) -> str:
    """Drop trailing commas before ``}``/``]`` (outside strings); the rest is left to ``strict=False``."""
    dropped = {index for index, char in _outside_strings(text)
               if char == "," and text[index + 1:].lstrip()[:1] in ("}", "]")}
    return "".join(char for index, char in enumerate(text) if index not in dropped)
