"""Messages from the editor that cannot be used — invalid JSON, not JSON-RPC 2.0, params of the wrong shape — worded
for the log, and the JSON-RPC error answer each one gets.

pygls reads a frame with ``json.loads(body, object_hook=structure_message)`` and hands what fails to the server's
error handler without answering, so an editor whose request had bad params would wait for ever. The protocol
(``language_server.SnapshotProtocol``) raises an :class:`UnusableMessage` from here instead: a request still gets an
error response with its id (``InvalidParams``, ``InvalidRequest``; ``ParseError`` with a null id when not even the
id could be read), and the log says which method and which field.
"""

from __future__ import annotations

import json
import re
from typing import Any

import cattrs
from pygls.exceptions import JsonRpcInvalidParams, JsonRpcInvalidRequest, JsonRpcParseError

_MAX_DETAILS = 3
_MAX_SHOWN = 120


class UnusableMessage(Exception):
    """A message from the editor that was ignored; ``answer`` is the JSON-RPC error response owed for it, if any."""

    def __init__(self, reason: str, answer: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.answer = answer


def _error_answer(msg_id: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": msg_id, "error": {"code": code, "message": message}}


def _camel(path: str) -> str:
    return re.sub(r"_([a-z])", lambda match: match.group(1).upper(), path)


def _details(error: BaseException | None) -> str:
    if isinstance(error, cattrs.BaseValidationError):
        found = [_camel(line.replace("@ $.", "@ ")) for line in cattrs.transform_error(error, path="$")]
        more = f" and {len(found) - _MAX_DETAILS} more" if len(found) > _MAX_DETAILS else ""
        return "; ".join(found[:_MAX_DETAILS]) + more
    return str(error) if error is not None else "unknown reason"


def _is_request(data: Any) -> bool:
    return isinstance(data, dict) and "id" in data and "method" in data


def bad_params(data: dict[str, Any], error: Exception) -> UnusableMessage:
    """``data`` is valid JSON-RPC whose params do not have the shape its method requires."""
    method = data.get("method")
    if method is None:
        return UnusableMessage(f"a response from the editor could not be read ({_details(error.__cause__)}); ignored")
    reason = f"{method}: params do not match the LSP specification ({_details(error.__cause__)})"
    if _is_request(data):
        return UnusableMessage(f"{reason}; answered with an error",
                               _error_answer(data["id"], JsonRpcInvalidParams.CODE, reason))
    return UnusableMessage(f"{reason}; ignored")


def not_json_rpc(message: Any) -> UnusableMessage:
    """``message`` is JSON but not a JSON-RPC 2.0 object (no ``"jsonrpc": "2.0"``, or not an object at all)."""
    shown = json.dumps(message)[:_MAX_SHOWN] if _jsonable(message) else repr(message)[:_MAX_SHOWN]
    reason = f'not a JSON-RPC 2.0 message (an object with "jsonrpc": "2.0"): {shown}'
    msg_id = message.get("id") if isinstance(message, dict) else None
    if isinstance(msg_id, (bool, float)) or not isinstance(msg_id, (int, str)):
        msg_id = None
    return UnusableMessage(f"{reason}; answered with an error",
                           _error_answer(msg_id, JsonRpcInvalidRequest.CODE, reason))


def not_json(error: json.JSONDecodeError) -> UnusableMessage:
    reason = f"a message from the editor is not valid JSON ({error.msg} at character {error.pos})"
    return UnusableMessage(f"{reason}; answered with a parse error",
                           _error_answer(None, JsonRpcParseError.CODE, reason))


def not_utf8(error: UnicodeDecodeError) -> UnusableMessage:
    reason = f"a message from the editor is not UTF-8 ({error.reason} at byte {error.start})"
    return UnusableMessage(f"{reason}; answered with a parse error",
                           _error_answer(None, JsonRpcParseError.CODE, reason))


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True
