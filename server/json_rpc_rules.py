"""JSON-RPC 2.0 and the LSP lifecycle as the specifications say them, where pygls 2.1 does otherwise.

Every request gets exactly one answer and a notification none: not JSON -> ``ParseError`` (-32700) with a null id;
not a request -> ``InvalidRequest`` (-32600); an unknown method -> ``MethodNotFound`` (-32601) for a request and
silence for a notification; params of the wrong shape -> ``InvalidParams`` (-32602) naming the field; a request
before ``initialize`` -> ``ServerNotInitialized`` (-32002); anything but ``exit`` after ``shutdown`` ->
``InvalidRequest``. No answer carries a Python stack, and the log keeps one line per problem (the stack only at
debug level). The wording of each refusal is in :mod:`.malformed_input`; framing is in :mod:`.json_rpc_framing`.

What :class:`StrictJsonRpcProtocol` changes in pygls (each worth fixing upstream, in ``pygls/protocol/json_rpc.py``):

- pygls structures messages in ``json.loads``' ``object_hook``, which sees every nested object, so any object in
  the params with a ``"jsonrpc"`` key (a diagnostic's ``data``, a command argument) was taken for a message of its
  own. Here the hook returns objects as they are and only the top-level object is structured.
- ``_execute_handler`` keeps the future of every notification, and of every handler a generator handler yields to,
  in ``_request_futures`` under a fresh uuid that nothing removes: ~2 KB per didOpen/didChange/didClose, for ever.
  Here a handler's future leaves the table when it is done.
- ``lsp_shutdown`` cancels the table's futures while iterating over it, and cancelling a ``concurrent.futures``
  future runs its callbacks at once, which remove entries: "dictionary changed size during iteration".
- A request the server sends waits for the editor's answer for ever; here it fails after
  :data:`CLIENT_ANSWER_TIMEOUT_S` with :class:`NoAnswerFromEditor`, and an answer that cannot be read fails it too.
- ``JsonRpcInternalError.of`` puts the stack in the answer's ``data``; here ``data`` of an internal error is dropped.
- ``lsp_exit`` exits with 1 after ``exit`` without ``shutdown``, but the ``SystemExit`` is swallowed by
  ``start_io``; :attr:`StrictJsonRpcProtocol.exit_code` keeps the code for the command line to return.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import attrs
from lsprotocol import types
from pygls.protocol import LanguageServerProtocol, lsp_method
from pygls.protocol.json_rpc import JsonRPCNotification, JsonRPCRequestMessage, JsonRPCResponseMessage

from . import malformed_input
from .malformed_input import UnusableMessage, is_message_id

log = logging.getLogger(__name__)

CLIENT_ANSWER_TIMEOUT_S = float(os.environ.get("METAGPT_LSP_CLIENT_ANSWER_TIMEOUT_S", "60"))
"""How long a request the server sends (``workspace/applyEdit``, ``workspace/configuration``, ...) waits for the
editor's answer before it fails with :class:`NoAnswerFromEditor`."""

_PYGLS_LOGGERS = ("pygls.server", "pygls.protocol.json_rpc", "pygls.protocol.language_server", "pygls.feature_manager")


class NoAnswerFromEditor(TimeoutError):
    """A request the server sent that the editor did not answer in time, or answered with something unreadable."""


def _lsp_message_type(method: str) -> Any:
    return types.METHOD_TO_TYPES.get(method, (None,))[0]


def is_notification_method(method: str) -> bool:
    message_type = _lsp_message_type(method)
    return message_type is not None and "id" not in attrs.fields_dict(message_type)


def is_request_method(method: str) -> bool:
    message_type = _lsp_message_type(method)
    return message_type is not None and "id" in attrs.fields_dict(message_type)


def kind_of(data: Any) -> str:
    """``"request"``, ``"notification"`` or ``"answer"`` (a response from the editor); raises
    :class:`UnusableMessage` for anything else."""
    is_answer = isinstance(data, dict) and "method" not in data and ("result" in data or "error" in data)
    if not isinstance(data, dict) or data.get("jsonrpc") != "2.0":
        raise malformed_input.bad_answer(data) if is_answer else malformed_input.not_json_rpc(data)
    if is_answer:
        if not (is_message_id(data.get("id")) or (data.get("id") is None and "error" in data)):
            raise malformed_input.bad_answer(data)
        return "answer"
    if not isinstance(data.get("method"), str):
        raise malformed_input.not_json_rpc(data, "a method name that is a string")
    if "id" not in data:
        return "notification"
    if not is_message_id(data["id"]):
        raise malformed_input.not_json_rpc(data, "an id that is an integer or a string")
    return "request"


def rule_broken(data: dict[str, Any], kind: str, *, initialized: bool, shutting_down: bool,
                provided: bool) -> UnusableMessage | None:
    """The rule a request or notification breaks, if any: before ``initialize`` and after ``shutdown`` only ``exit``
    counts; a method is sent as what it is (request or notification); a provided method's params are structured."""
    method = data["method"]
    if method == types.EXIT and kind == "notification":
        return None
    if shutting_down:
        return malformed_input.after_shutdown(data)
    if not initialized and method != types.INITIALIZE:
        return malformed_input.before_initialize(data)
    if kind == "request" and is_notification_method(method):
        return malformed_input.notification_with_id(data)
    if kind == "notification" and is_request_method(method):
        return malformed_input.request_without_id(data)
    if (kind == "request" and provided and data.get("params") is not None
            and not isinstance(data["params"], (dict, list))):
        return malformed_input.params_not_structured(data)
    return None


class StrictJsonRpcProtocol(LanguageServerProtocol):
    """pygls' LSP protocol held to JSON-RPC 2.0 and the LSP lifecycle (see the module docstring for what changes)."""

    client_answer_timeout_s = CLIENT_ANSWER_TIMEOUT_S

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.initialize_seen = False
        self.shutdown_seen = False
        self.exit_code = 0
        """1 after ``exit`` without ``shutdown`` (the code the process should exit with)."""
        keep_stacks_at_debug()

    def structure_message(self, data: dict[str, Any]) -> Any:
        return data  # json.loads' object_hook: every object stays a dict; handle_message structures the top level

    def handle_message(self, message: Any) -> None:
        try:
            kind = kind_of(message)
            if kind != "answer":
                method = message["method"]
                problem = rule_broken(message, kind, initialized=self.initialize_seen, shutting_down=self.shutdown_seen,
                                      provided=method in self.fm.builtin_features or method in self.fm.features)
                if problem is not None:
                    raise problem
            structured = self._structure(message, kind)
        except UnusableMessage as unusable:
            self.refuse(unusable)
            return
        if kind == "request":
            self.initialize_seen = self.initialize_seen or message["method"] == types.INITIALIZE
            self.shutdown_seen = self.shutdown_seen or message["method"] == types.SHUTDOWN
        super().handle_message(structured)

    def refuse(self, unusable: UnusableMessage) -> None:
        """Send the error answer an unusable message is owed, if any, and log it in one line."""
        if unusable.answer is not None:
            self._send_data(unusable.answer)
        log.log(unusable.level, "%s", unusable)

    def _structure(self, data: dict[str, Any], kind: str) -> Any:
        if kind == "answer":
            expected = self._result_types.pop(data["id"], None) if is_message_id(data["id"]) else None
            target = types.ResponseErrorMessage if "error" in data else expected or JsonRPCResponseMessage
        else:
            target = self.get_message_type(data["method"])
            if target is None:  # pygls' fallbacks require params, which JSON-RPC lets a message leave out
                target = JsonRPCRequestMessage if kind == "request" else JsonRPCNotification
                data = {**data, "params": data.get("params")}
        try:
            return self._converter.structure(data, target)
        except Exception as error:  # noqa: BLE001 - whatever the converter raised, the sender is told why
            unusable = malformed_input.bad_params(data, error)
            if kind == "answer":
                self._fail_request(data["id"], NoAnswerFromEditor(str(unusable)))
            raise unusable from None

    def _fail_request(self, msg_id: Any, error: Exception) -> None:
        future = self._request_futures.pop(msg_id, None) if is_message_id(msg_id) else None
        self._result_types.pop(msg_id, None)
        if future is not None and not future.done():
            future.set_exception(error)

    def _execute_handler(self, msg_id: Any, handler: Any, callback: Callable[[Future[Any]], None],
                         args: Any = None, kwargs: Any = None) -> None:
        def forget_then_call_back(future: Future[Any]) -> None:
            if self._request_futures.get(msg_id) is future:
                del self._request_futures[msg_id]
            callback(future)

        super()._execute_handler(msg_id, handler, forget_then_call_back, args, kwargs)

    def _handle_response(self, msg_id: Any, result: Any = None, error: Any = None) -> None:
        future = self._request_futures.get(msg_id)
        if future is not None and future.done():  # given up on (timed out, cancelled at shutdown) before it came
            del self._request_futures[msg_id]
            log.info("the editor's answer to request %s came after the server stopped waiting; ignored", msg_id)
            return
        super()._handle_response(msg_id, result, error)

    def _send_response(self, msg_id: Any, result: Any = None, error: types.ResponseError | None = None) -> None:
        if error is not None and error.code == types.ErrorCodes.InternalError and error.data is not None:
            error = types.ResponseError(code=error.code, message=error.message)  # the stack stays out of the answer
        super()._send_response(msg_id, result, error)

    def send_request(self, method: str, params: Any = None, callback: Callable[[Any], None] | None = None,
                     msg_id: Any = None) -> Future[Any]:
        """pygls' ``send_request``, whose future fails with :class:`NoAnswerFromEditor` when the editor does not
        answer within :attr:`client_answer_timeout_s` (``send_request_async`` and every ``*_async`` helper use it)."""
        msg_id = str(uuid.uuid4()) if msg_id is None else msg_id
        future = super().send_request(method, params, callback, msg_id)
        timeout = self.client_answer_timeout_s

        def give_up() -> None:
            if not future.done():
                log.warning("the editor did not answer %s within %g s; stopped waiting", method, timeout)
            self._fail_request(msg_id, NoAnswerFromEditor(f"the editor did not answer {method} within {timeout:g} s"))

        try:
            timer: asyncio.TimerHandle | threading.Timer = asyncio.get_running_loop().call_later(timeout, give_up)
        except RuntimeError:  # sent from a thread handler: no event loop here
            timer = threading.Timer(timeout, give_up)
            timer.daemon = True
            timer.start()
        future.add_done_callback(lambda _future: timer.cancel())
        return future

    @lsp_method(types.SHUTDOWN)
    def lsp_shutdown(self, *args: Any) -> Any:
        """pygls' shutdown, cancelling what is in flight over a copy of the table (cancelling changes it)."""
        if (user_handler := self.fm.features.get(types.SHUTDOWN)) is not None:
            yield user_handler, args, None
        current_id = self.msg_id
        for msg_id, future in list(self._request_futures.items()):
            if msg_id != current_id and not future.done():
                future.cancel()
        self._shutdown = True
        return None

    @lsp_method(types.EXIT)
    def lsp_exit(self, *args: Any) -> Any:
        self.exit_code = 0 if self.shutdown_seen else 1
        yield from super().lsp_exit(*args)


class _StackOnlyAtDebug(logging.Filter):
    """Drops pygls' records that carry a stack unless our log is at debug level: pygls logs them with
    ``logger.exception`` and then reports the same error to ``report_server_error``, which logs it in one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.exc_info or logging.getLogger("metagpt_lsp").isEnabledFor(logging.DEBUG)


_STACK_FILTER = _StackOnlyAtDebug()


def keep_stacks_at_debug() -> None:
    for name in _PYGLS_LOGGERS:
        logger = logging.getLogger(name)
        if _STACK_FILTER not in logger.filters:
            logger.addFilter(_STACK_FILTER)


__all__ = ["CLIENT_ANSWER_TIMEOUT_S", "NoAnswerFromEditor", "StrictJsonRpcProtocol", "kind_of", "rule_broken"]
