"""The protocol fuzzed over a real pipe: whatever bytes arrive, every request gets exactly one answer with the code
JSON-RPC and LSP name, a notification none, no answer carries a Python stack, and the server answers a normal request
afterwards.

Three properties, each bounded by a number of examples (never by seconds), derandomised so that a run is repeatable:
- **messages**: any JSON value as a message, built from the pieces that matter (jsonrpc, id, method, params, with
  objects that look like JSON-RPC messages nested in the params), checked against an oracle of the rules;
- **framing and encodings**: frames, extra headers, garbage between frames, absurd Content-Lengths, bodies cut short,
  not UTF-8, UTF-8 with a BOM, UTF-16, nested too deeply or holding a 5,000-digit integer, sent in random pieces;
- **lifecycle**: random sequences of initialize, initialized, requests, notifications and shutdown, then exit, on a
  fresh server each time: -32002 before initialize, -32600 after shutdown, the exit status 0 only after shutdown.

The first two share one server per property; a property's examples run one after another on it, so a message that
broke the server fails every later example too (and hypothesis shrinks to the first).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lsprotocol import types

from metagpt_lsp.testing.raw_jsonrpc import RawServer, frame

FUZZ_SETTINGS: dict[str, Any] = {
    "deadline": None, "derandomize": True, "database": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture]}
PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, NOT_INITIALIZED = -32700, -32600, -32601, -32602, -32002
ABSENT = object()
"""A member left out of the message."""

URI = "file:///fuzz/a.py"
REQUESTS = {  # request methods the server provides, with params it accepts
    types.TEXT_DOCUMENT_DIAGNOSTIC: {"textDocument": {"uri": URI}},
    types.TEXT_DOCUMENT_CODE_ACTION: {"textDocument": {"uri": URI}, "context": {"diagnostics": []},
                                      "range": {"start": {"line": 0, "character": 0},
                                                "end": {"line": 0, "character": 0}}},
}
NOTIFICATIONS = {  # notification methods, with params they accept
    types.TEXT_DOCUMENT_DID_OPEN: {"textDocument": {"uri": URI, "languageId": "python", "version": 1,
                                                    "text": "def f(:\n"}},
    types.TEXT_DOCUMENT_DID_CLOSE: {"textDocument": {"uri": URI}},
    types.CANCEL_REQUEST: {"id": 123456},
    types.SET_TRACE: {"value": "off"},
}
UNKNOWN = ["metagpt/noSuchMethod", "$/noSuchThing", "textDocument/noSuchFeature"]


def is_message_id(value: Any) -> bool:
    return type(value) is int or type(value) is str


# -- what hypothesis sends --------------------------------------------------------------------------------------

KEYS = st.sampled_from(["jsonrpc", "id", "method", "params", "result", "error", "uri", "data"]) | st.text(max_size=4)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=4)
    | st.fixed_dictionaries({"jsonrpc": st.sampled_from(["2.0", "1.0"]), "id": inner, "method": inner}),
    max_leaves=12)
IDS = (st.integers(-2**63, 2**63) | st.text(max_size=8) | st.floats(allow_nan=False, allow_infinity=False)
       | st.booleans() | st.none() | st.lists(st.integers(), max_size=2) | st.just(ABSENT))
METHODS = (st.sampled_from([*REQUESTS, *NOTIFICATIONS, *UNKNOWN]) | st.integers() | st.none() | st.just(ABSENT))


@st.composite
def messages(draw: st.DrawFn) -> Any:
    """A JSON value sent as one message: mostly near-JSON-RPC objects, sometimes anything at all."""
    if draw(st.integers(0, 9)) == 0:
        return draw(JSON_VALUES)
    method = draw(METHODS)
    members: dict[str, Any] = {"jsonrpc": draw(st.sampled_from(["2.0", "2.0", "2.0", "1.0", 2.0, ABSENT])),
                               "id": draw(IDS), "method": method}
    valid = REQUESTS.get(method) or NOTIFICATIONS.get(method) if isinstance(method, str) else None
    params = draw(st.one_of(st.just(valid) if valid else st.nothing(), JSON_VALUES, st.just(ABSENT)))
    if isinstance(params, dict) and draw(st.booleans()):  # a JSON-RPC look-alike inside the params
        params = {**params, "data": draw(st.fixed_dictionaries({"jsonrpc": st.just("2.0"), "id": IDS.filter(
            lambda value: value is not ABSENT), "method": METHODS.filter(lambda value: value is not ABSENT)}))}
    members["params"] = params
    if method is ABSENT and draw(st.booleans()):
        members[draw(st.sampled_from(["result", "error"]))] = draw(JSON_VALUES)
    return {key: value for key, value in members.items() if value is not ABSENT}


# -- what the rules say it gets ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Expected:
    """No answer (``msg_id`` is ABSENT), or exactly one for ``msg_id``: an error with one of ``codes``, or (when
    ``result_allowed``) a result."""

    msg_id: Any = ABSENT
    codes: frozenset[int] = frozenset()
    result_allowed: bool = False


SILENCE = Expected()


def expected_for(message: Any) -> Expected:
    """The answer JSON-RPC 2.0 and LSP name for ``message``, on an initialized server that is not shutting down."""
    is_object = isinstance(message, dict)
    msg_id = message.get("id") if is_object else None
    usable_id = msg_id if is_message_id(msg_id) else None
    if is_object and "method" not in message and ("result" in message or "error" in message):
        return SILENCE  # an answer from the editor is never answered
    if not is_object or message.get("jsonrpc") != "2.0" or not isinstance(message.get("method"), str):
        return Expected(usable_id, frozenset({INVALID_REQUEST}))
    method = message["method"]
    if "id" not in message:
        return SILENCE
    if not is_message_id(msg_id):
        return Expected(None, frozenset({INVALID_REQUEST}))
    if method in NOTIFICATIONS:
        return Expected(msg_id, frozenset({METHOD_NOT_FOUND}))
    if method not in REQUESTS:
        return Expected(msg_id, frozenset({METHOD_NOT_FOUND}))
    params = message.get("params")
    if params is not None and not isinstance(params, (dict, list)):
        return Expected(msg_id, frozenset({INVALID_PARAMS}))
    return Expected(msg_id, frozenset({INVALID_PARAMS}), result_allowed=True)


def check_answers(answers: list[dict[str, Any]], expected: list[Expected], sent: Any) -> None:
    """``answers`` are exactly one per expected answer, in order, each well-formed and without a stack."""
    wanted = [e for e in expected if e.msg_id is not ABSENT]
    assert len(answers) == len(wanted), f"{sent!r}\nexpected {wanted}\ngot {answers}"
    for answer, expectation in zip(answers, wanted, strict=True):
        assert answer["id"] == expectation.msg_id, f"{sent!r}: {answer}"
        assert ("result" in answer) != ("error" in answer), answer
        if "result" in answer:
            assert expectation.result_allowed, f"{sent!r}: answered with a result: {answer}"
        else:
            error = answer["error"]
            assert error["code"] in expectation.codes, f"{sent!r}: {answer}"
            assert isinstance(error["message"], str) and error["message"], answer
            assert "Traceback" not in error["message"] and "traceback" not in json.dumps(error.get("data")), answer


# -- one server for many examples --------------------------------------------------------------------------------

class ServerOnALoop:
    """A :class:`RawServer` on an event loop of its own, so that synchronous hypothesis examples can talk to it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.server: RawServer = self.run(RawServer.start())
        self.run(self.server.initialize())
        self.run(self.server.notify(types.TEXT_DOCUMENT_DID_OPEN, NOTIFICATIONS[types.TEXT_DOCUMENT_DID_OPEN]))

    def run(self, work: Any) -> Any:
        return self.loop.run_until_complete(work)

    def close(self) -> int:
        try:
            return self.run(self.server.stop())
        finally:
            self.loop.close()


@pytest.fixture(scope="module")
def shared_server() -> Iterator[ServerOnALoop]:
    session = ServerOnALoop()
    try:
        yield session
    finally:
        status = session.close()
        assert b"Traceback" not in session.server.stderr, session.server.stderr.decode(errors="replace")[-3000:]
        assert status == 0


def send_and_collect(session: ServerOnALoop, *chunks: bytes) -> list[dict[str, Any]]:
    async def exchange() -> list[dict[str, Any]]:
        await session.server.send(*chunks)
        return await session.server.answers_until_barrier()

    return session.run(exchange())


@settings(max_examples=300, **FUZZ_SETTINGS)
@given(message=messages())
def test_any_message_gets_the_answer_the_rules_name(shared_server: ServerOnALoop, message: Any):
    answers = send_and_collect(shared_server, frame(message))
    check_answers(answers, [expected_for(message)], message)


# -- framing and encodings --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Piece:
    """Bytes for the wire and the answers they are owed."""

    data: bytes
    expected: Expected


GARBAGE = st.text(alphabet="abcXYZ {}[]\"'_-.,;!?\t", max_size=30).map(str.encode)
HEADERS = st.lists(st.sampled_from([b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n",
                                    b"X-Anything: 1\r\n"]), max_size=2)


@st.composite
def pieces(draw: st.DrawFn, msg_id: int) -> Piece:
    kind = draw(st.sampled_from(["request", "request", "notification", "garbage line", "garbage run-in",
                                 "absurd length", "not json", "not utf-8", "utf-8 bom", "utf-16", "deep",
                                 "long integer"]))
    request = {"jsonrpc": "2.0", "id": msg_id, "method": types.TEXT_DOCUMENT_DIAGNOSTIC,
               "params": {"textDocument": {"uri": draw(st.text(max_size=20))}}}
    answered = Expected(msg_id, frozenset(), result_allowed=True)
    parse_error = Expected(None, frozenset({PARSE_ERROR}))
    headers = draw(HEADERS)

    def framed(body: bytes) -> bytes:
        position = draw(st.integers(0, len(headers)))
        lines = [*headers[:position], b"Content-Length: %d\r\n" % len(body), *headers[position:]]
        return b"".join(lines) + b"\r\n" + body

    if kind == "request":
        return Piece(framed(json.dumps(request, ensure_ascii=draw(st.booleans())).encode()), answered)
    if kind == "notification":
        return Piece(framed(json.dumps({"jsonrpc": "2.0", "method": "$/noSuchThing",
                                        "params": draw(JSON_VALUES)}).encode()), SILENCE)
    if kind == "garbage line":
        return Piece(draw(GARBAGE) + b"\r\n", SILENCE)
    if kind == "garbage run-in":  # no line break: it runs into the next frame's header
        return Piece(draw(GARBAGE), SILENCE)
    if kind == "absurd length":
        digits = draw(st.sampled_from([b"67108865", b"100000000000000000", b"9" * 5000]))
        return Piece(b"Content-Length: " + digits + b"\r\n\r\n" + draw(GARBAGE), SILENCE)
    if kind == "not utf-8":
        return Piece(framed(b'{"jsonrpc": "2.0", "id": %d, "method": "\xff\xfe"}' % msg_id), parse_error)
    if kind == "not json":
        body = json.dumps(request).encode()
        return Piece(framed(body[:draw(st.integers(0, len(body) - 1))]), parse_error)
    if kind in ("utf-8 bom", "utf-16"):  # Python's json reads both (a BOM says which); answered like any other
        body = b"\xef\xbb\xbf" + json.dumps(request).encode() if kind == "utf-8 bom" else json.dumps(
            request).encode("utf-16")
        return Piece(framed(body), answered)
    if kind == "deep":
        deep = b"[" * 50_000 + b"]" * 50_000
        return Piece(framed(b'{"jsonrpc": "2.0", "id": %d, "method": "x", "params": %s}' % (msg_id, deep)),
                     parse_error)
    return Piece(framed(b'{"jsonrpc": "2.0", "id": %d, "method": "x", "params": [%s]}' % (msg_id, b"1" * 5000)),
                 parse_error)


@st.composite
def wire(draw: st.DrawFn) -> tuple[list[bytes], list[Expected]]:
    """Pieces in a row, cut into chunks at random places."""
    drawn = [draw(pieces(msg_id)) for msg_id in range(1, draw(st.integers(1, 6)) + 1)]
    data = b"".join(piece.data for piece in drawn)
    if drawn[-1].data and not drawn[-1].data.endswith((b"\r\n", b"}")):
        data += b"\r\n"  # a run-in at the very end would run into the barrier instead: fine, but say so plainly
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=4)))
    chunks = [data[start:end] for start, end in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    return chunks, [piece.expected for piece in drawn]


@settings(max_examples=80, **FUZZ_SETTINGS)
@given(sent=wire())
def test_framing_and_encodings_never_desynchronise_or_silence_a_request(shared_server: ServerOnALoop,
                                                                        sent: tuple[list[bytes], list[Expected]]):
    chunks, expected = sent
    answers = send_and_collect(shared_server, *chunks)
    check_answers(answers, expected, b"".join(chunks)[:300])


# -- the lifecycle ----------------------------------------------------------------------------------------------

STEPS = st.lists(st.sampled_from(["initialize", "initialized", "request", "notification", "shutdown"]), max_size=8)


async def run_lifecycle(steps: list[str]) -> None:
    server = await RawServer.start()
    initialized = shut_down = False
    expected: dict[int, Expected] = {}
    try:
        for msg_id, step in enumerate(steps, start=1):
            if step == "initialize" or step == "shutdown" or step == "request":
                method = {"initialize": types.INITIALIZE, "shutdown": types.SHUTDOWN,
                          "request": types.TEXT_DOCUMENT_DIAGNOSTIC}[step]
                params = {"initialize": {"capabilities": {}}, "shutdown": None,
                          "request": REQUESTS[types.TEXT_DOCUMENT_DIAGNOSTIC]}[step]
                if shut_down:
                    expected[msg_id] = Expected(msg_id, frozenset({INVALID_REQUEST}))
                elif not initialized and step != "initialize":
                    expected[msg_id] = Expected(msg_id, frozenset({NOT_INITIALIZED}))
                else:
                    expected[msg_id] = Expected(msg_id, frozenset(), result_allowed=True)
                    initialized = True
                    shut_down = step == "shutdown"
                await server.request(msg_id, method, params)
                await server.response(msg_id)  # an editor waits for initialize and shutdown; so do we, for all
            elif step == "initialized":
                await server.notify(types.INITIALIZED, {})
            else:
                await server.notify(types.TEXT_DOCUMENT_DID_OPEN, NOTIFICATIONS[types.TEXT_DOCUMENT_DID_OPEN])
        await server.notify(types.EXIT)
        while await server.read_message() is not None:  # everything up to the end of stdout
            pass
        status = await server.exit_status()
    finally:
        if server.process.returncode is None:
            server.process.kill()
            await server.exit_status()
    answers = [message for message in server.received if "method" not in message]
    check_answers(answers, list(expected.values()), steps)
    assert status == (0 if shut_down else 1), f"{steps}: exit status {status}"
    assert b"Traceback" not in server.stderr


@settings(max_examples=12, **FUZZ_SETTINGS)
@given(steps=STEPS)
def test_lifecycle_rules_and_the_exit_status(steps: list[str]):
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(run_lifecycle(steps))
    finally:
        loop.close()
