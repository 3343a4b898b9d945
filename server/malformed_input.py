"""Messages from the editor that cannot be used — invalid JSON, not JSON-RPC 2.0, params of the wrong shape, a
request out of the lifecycle — worded for the log, and the JSON-RPC error answer each one gets.

The rules are in :mod:`.json_rpc_rules`; this module only words them. A request always gets an error response with
its id (``InvalidParams`` naming the field, ``InvalidRequest``, ``MethodNotFound``, ``ServerNotInitialized``;
``ParseError`` with a null id when not even the id could be read); a notification or an answer from the editor gets
a log line only. No answer and no log line at info level or above carries a Python stack.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import cattrs
from pygls.exceptions import (
    JsonRpcInvalidParams,
    JsonRpcInvalidRequest,
    JsonRpcMethodNotFound,
    JsonRpcParseError,
    JsonRpcServerNotInitialized,
)

_MAX_DETAILS = 3
_MAX_SHOWN = 120


class UnusableMessage(Exception):
    """A message from the editor that was ignored; ``answer`` is the JSON-RPC error response owed for it, if any, and
    ``level`` the level of its one log line."""

    def __init__(self, reason: str, answer: dict[str, Any] | None = None, level: int = logging.ERROR) -> None:
        super().__init__(reason)
        self.answer = answer
        self.level = level


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


def is_message_id(value: Any) -> bool:
    """A JSON-RPC id as LSP has them: an integer or a string (``true`` and ``1.5`` are not)."""
    return type(value) is int or type(value) is str


def _is_request(data: Any) -> bool:
    return isinstance(data, dict) and "id" in data and "method" in data


def _refused(data: dict[str, Any], code: int, reason: str, level: int = logging.ERROR) -> UnusableMessage:
    """A request gets an error answer with its id; a notification only the log line."""
    if _is_request(data):
        return UnusableMessage(f"{reason}; answered with an error", _error_answer(data["id"], code, reason), level)
    return UnusableMessage(f"{reason}; ignored", None, level)


def bad_params(data: dict[str, Any], error: BaseException) -> UnusableMessage:
    """``data`` is JSON-RPC whose params do not have the shape its method requires (``error``: the converter's)."""
    method = data.get("method")
    if method is None:
        return UnusableMessage(f"an answer from the editor could not be read ({_details(error)}); ignored")
    return _refused(data, JsonRpcInvalidParams.CODE,
                    f"{method}: params do not match the LSP specification ({_details(error)})")


def params_not_structured(data: dict[str, Any]) -> UnusableMessage:
    return _refused(data, JsonRpcInvalidParams.CODE,
                    f"{data['method']}: params must be an object or an array, not {_shown(data.get('params'))}")


def not_json_rpc(message: Any, why: str = 'an object with "jsonrpc": "2.0"') -> UnusableMessage:
    """``message`` is JSON but not a JSON-RPC 2.0 request (not an object, no ``"jsonrpc": "2.0"``, no method, an id
    that is neither an integer nor a string); answered ``InvalidRequest``, with its id when that id can be used."""
    reason = f"not a JSON-RPC 2.0 message ({why}): {_shown(message)}"
    msg_id = message.get("id") if isinstance(message, dict) else None
    return UnusableMessage(f"{reason}; answered with an error",
                           _error_answer(msg_id if is_message_id(msg_id) else None, JsonRpcInvalidRequest.CODE, reason))


def bad_answer(message: dict[str, Any]) -> UnusableMessage:
    """An answer from the editor (result or error, no method) that is not JSON-RPC 2.0: an answer gets no answer."""
    return UnusableMessage(f"an answer from the editor is not JSON-RPC 2.0 (no usable id or jsonrpc): "
                           f"{_shown(message)}; ignored")


def notification_with_id(data: dict[str, Any]) -> UnusableMessage:
    """A notification method sent as a request: no such request exists, and acting on it is not what was asked."""
    return _refused(data, JsonRpcMethodNotFound.CODE,
                    f"{data['method']} is a notification, but it came with an id as if it were a request",
                    logging.WARNING)


def request_without_id(data: dict[str, Any]) -> UnusableMessage:
    """A request method sent as a notification: nobody would read its result, so it is not run."""
    return UnusableMessage(f"{data['method']} is a request, but it came without an id; ignored", None,
                           logging.WARNING)


def before_initialize(data: dict[str, Any]) -> UnusableMessage:
    return _refused(data, JsonRpcServerNotInitialized.CODE,
                    f"{data['method']} arrived before initialize; the server is not initialized yet", logging.WARNING)


def after_shutdown(data: dict[str, Any]) -> UnusableMessage:
    return _refused(data, JsonRpcInvalidRequest.CODE,
                    f"{data['method']} arrived after shutdown; only exit is accepted now", logging.WARNING)


def not_json(error: json.JSONDecodeError) -> UnusableMessage:
    reason = f"a message from the editor is not valid JSON ({error.msg} at character {error.pos})"
    return UnusableMessage(f"{reason}; answered with a parse error",
                           _error_answer(None, JsonRpcParseError.CODE, reason))


def unreadable_json(error: Exception) -> UnusableMessage:
    """JSON that Python cannot read: nested deeper than the interpreter's recursion limit, or an integer longer than
    ``sys.get_int_max_str_digits()`` (4,300 digits; the limit guards against quadratic-time parsing)."""
    what = "nested too deeply" if isinstance(error, RecursionError) else "holding an integer of too many digits"
    reason = f"a message from the editor could not be read: JSON {what}"
    return UnusableMessage(f"{reason}; answered with a parse error",
                           _error_answer(None, JsonRpcParseError.CODE, reason))


def not_utf8(error: UnicodeDecodeError) -> UnusableMessage:
    reason = f"a message from the editor is not UTF-8 ({error.reason} at byte {error.start})"
    return UnusableMessage(f"{reason}; answered with a parse error",
                           _error_answer(None, JsonRpcParseError.CODE, reason))


def _shown(value: Any) -> str:
    """The start of ``value`` as JSON, for a log line (never raises: deep nesting is said, not shown)."""
    try:
        return json.dumps(value)[:_MAX_SHOWN]
    except (TypeError, ValueError):
        return repr(value)[:_MAX_SHOWN]
    except RecursionError:
        return "(nested too deeply to show)"
