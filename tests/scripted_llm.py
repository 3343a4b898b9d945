"""A scripted OpenAI-compatible server on 127.0.0.1 for tests and benchmarks: real HTTP, replies by rule, faults on demand.

It speaks just enough HTTP/1.1 (keep-alive, Content-Length bodies, chunked SSE streams) for the ``openai`` client and
any other OpenAI-compatible client: ``GET /v1/models`` and ``POST /v1/chat/completions``, streaming or not, with
``usage`` estimated as characters // 4. Each request is answered by the first matching :class:`Rule` — a regex on the
last user message or on any message, or a predicate on the request JSON — with a reply text or a fault: latency,
HTTP 429 with Retry-After, HTTP 500, a malformed JSON body, a stream cut off mid-way (``truncate``: the connection
drops inside the body; ``unfinished``: the body ends cleanly, without a finish_reason or ``[DONE]``), or a hang that
lasts until the client disconnects. ``llama_cpp=True`` mimics the embedded llama.cpp server (``json_schema`` answers HTTP 500,
``json_object`` works); ``reject_params`` mimics OpenAI's HTTP 400 on parameters it does not know.

Every request is recorded (the API key apart from the other headers) so tests can assert on prompts and on what
reached the wire. In tests: ``async with ScriptedLlm(rules) as server`` (or the ``scripted_llm`` fixture); for
benchmarks and editors: ``python tests/scripted_llm.py --port P --script script.json`` prints ``READY <base_url>``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import time
from dataclasses import dataclass, field
from typing import Any, Callable

FAULTS = ("429", "500", "malformed", "truncate", "unfinished", "hang")
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error"}


@dataclass
class Rule:
    """When a request matches, answer with ``reply`` (text, or a function of the request JSON) or with ``fault``."""

    reply: str | Callable[[dict], str] = ""
    last_user: str | None = None  # regex searched in the last user message
    any_message: str | None = None  # regex searched in every message's content
    when: Callable[[dict], bool] | None = None
    fault: str | None = None  # one of FAULTS
    latency_s: float = 0.0  # waited before answering (or before the fault)
    chunk_latency_s: float = 0.0  # waited between stream chunks
    retry_after_s: float | None = None  # sent with a 429
    times: int | None = None  # used at most this many times, then skipped
    used: int = 0

    def __post_init__(self) -> None:
        if self.fault is not None and self.fault not in FAULTS:
            raise ValueError(f"unknown fault {self.fault!r}; expected one of {FAULTS}")

    def matches(self, body: dict) -> bool:
        if self.times is not None and self.used >= self.times:
            return False
        messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
        if self.last_user is not None:
            users = [_content(m) for m in messages if m.get("role") == "user"]
            if not users or not re.search(self.last_user, users[-1]):
                return False
        if self.any_message is not None and not any(re.search(self.any_message, _content(m)) for m in messages):
            return False
        return self.when is None or bool(self.when(body))

    @classmethod
    def from_json(cls, data: dict) -> Rule:
        known = {"reply", "last_user", "any_message", "fault", "latency_s", "chunk_latency_s", "retry_after_s", "times"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown rule keys {sorted(unknown)}; expected some of {sorted(known)}")
        return cls(**data)


@dataclass
class RecordedRequest:
    """One request as the server saw it; the API key is kept apart from ``headers``."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict | None
    api_key: str | None
    disconnected: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def last_user_message(self) -> str:
        users = [_content(m) for m in (self.body or {}).get("messages") or [] if m.get("role") == "user"]
        return users[-1] if users else ""

    @property
    def response_format_type(self) -> str | None:
        return ((self.body or {}).get("response_format") or {}).get("type")


class ScriptedLlm:
    """The server: ``rules`` are tried in order; ``base_url`` is ready once started."""

    def __init__(self, rules: list[Rule] | tuple[Rule, ...] = (), *, default_reply: str = "OK",
                 llama_cpp: bool = False, reject_params: tuple[str, ...] = (), model: str = "scripted-model",
                 port: int = 0, chunk_chars: int = 8) -> None:
        self.rules = list(rules)
        self.default_reply = default_reply
        self.llama_cpp = llama_cpp
        self.reject_params = tuple(reject_params)
        self.model = model
        self.chunk_chars = chunk_chars
        self.requests: list[RecordedRequest] = []
        self._port = port
        self._server: asyncio.base_events.Server | None = None
        self._arrived = asyncio.Condition()
        self._connections: set[asyncio.Task] = set()

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def completions(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def script(self, *rules: Rule) -> None:
        """Replace the rules (the record of past requests is kept)."""
        self.rules = list(rules)

    async def wait_for_requests(self, count: int) -> list[RecordedRequest]:
        """Wait until at least ``count`` requests have arrived."""
        async with self._arrived:
            await self._arrived.wait_for(lambda: len(self.requests) >= count)
        return self.requests

    async def start(self) -> ScriptedLlm:
        self._server = await asyncio.start_server(self._on_connection, "127.0.0.1", self._port)
        self._port = self._server.sockets[0].getsockname()[1]  # kept after stop(): tests hit a closed port
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
            await self._server.wait_closed()

    async def __aenter__(self) -> ScriptedLlm:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- HTTP ------------------------------------------------------------------------------------------------------
    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._connections.add(task)
        try:
            while (request := await _read_request(reader)) is not None:
                await self._record(request)
                keep_alive = await self._answer(request, reader, writer)
                if not keep_alive or request.headers.get("connection", "").lower() == "close":
                    break
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        except asyncio.CancelledError:  # stop() ends open connections; the server is going away anyway
            pass
        finally:
            self._connections.discard(task)
            writer.close()

    async def _record(self, request: RecordedRequest) -> None:
        async with self._arrived:
            self.requests.append(request)
            self._arrived.notify_all()

    async def _answer(self, req: RecordedRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Write the answer; False when the connection must close afterwards."""
        if req.method == "GET" and req.path.rstrip("/").endswith("/models"):
            data = [{"id": self.model, "object": "model", "created": 0, "owned_by": "scripted"}]
            return await _send_json(writer, 200, {"object": "list", "data": data})
        if req.method != "POST" or not req.path.rstrip("/").endswith("/chat/completions"):
            return await _send_json(writer, 404, _error(f"no route for {req.method} {req.path}", "not_found"))
        body = req.body
        if body is None:
            return await _send_json(writer, 400, _error("the request body is not JSON", "invalid_request_error"))
        if self.llama_cpp and req.response_format_type == "json_schema":
            return await _send_json(writer, 500, _error("json_schema is not supported here", "server_error"))
        for name in self.reject_params:
            if name in body:
                message = f"Unrecognized request argument supplied: {name}"
                return await _send_json(writer, 400, _error(message, "invalid_request_error", param=name))
        rule = next((r for r in self.rules if r.matches(body)), None)
        if rule is None:
            rule = Rule(reply=self.default_reply)
        rule.used += 1
        if rule.latency_s:
            await asyncio.sleep(rule.latency_s)
        return await self._answer_by_rule(rule, req, reader, writer)

    async def _answer_by_rule(self, rule: Rule, req: RecordedRequest, reader: asyncio.StreamReader,
                              writer: asyncio.StreamWriter) -> bool:
        body = req.body or {}
        if rule.fault == "hang":
            while await reader.read(4096):
                pass
            req.disconnected.set()
            return False
        if rule.fault == "429":
            headers = {} if rule.retry_after_s is None else {"Retry-After": f"{rule.retry_after_s:g}"}
            return await _send_json(writer, 429, _error("Rate limit reached (scripted)", "rate_limit_error"), headers)
        if rule.fault == "500":
            return await _send_json(writer, 500, _error("scripted internal error", "server_error"))
        text = rule.reply(body) if callable(rule.reply) else rule.reply
        text, finish = _cap(text, body.get("max_tokens"))
        finish = None if rule.fault == "unfinished" else finish
        usage = {"prompt_tokens": _prompt_tokens(body), "completion_tokens": len(text) // 4}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        if body.get("stream"):
            return await self._stream(writer, rule, body, text, finish, usage)
        if rule.fault == "malformed":
            return await _send_raw(writer, 200, b'{"id": "chatcmpl-scripted", "choices": [{"message": ', {})
        if rule.fault == "truncate":
            payload = json.dumps(_completion(self.model, text, finish, usage)).encode()
            head = _head(200, {"Content-Type": "application/json", "Content-Length": str(len(payload))})
            writer.write(head + payload[: len(payload) // 2])
            await writer.drain()
            return False
        return await _send_json(writer, 200, _completion(self.model, text, finish, usage))

    async def _stream(self, writer: asyncio.StreamWriter, rule: Rule, body: dict, text: str, finish: str | None,
                      usage: dict) -> bool:
        head = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "Transfer-Encoding": "chunked"}
        writer.write(_head(200, head))
        pieces = [text[i: i + self.chunk_chars] for i in range(0, len(text), self.chunk_chars)] or [""]
        if rule.fault in ("truncate", "unfinished"):
            pieces = pieces[: max(1, len(pieces) // 2)]
        events = [_chunk(self.model, {"role": "assistant", "content": ""}, None)]
        events += [_chunk(self.model, {"content": piece}, None) for piece in pieces]
        if rule.fault == "malformed":
            events.append('{"id": "chatcmpl-scripted", "choices": [{"delta": ')
        if rule.fault is None:
            events.append(_chunk(self.model, {}, finish))
            if (body.get("stream_options") or {}).get("include_usage"):
                events.append(json.dumps({"id": "chatcmpl-scripted", "object": "chat.completion.chunk",
                                          "created": int(time.time()), "model": self.model, "choices": [],
                                          "usage": usage}))
            events.append("[DONE]")
        for event in events:
            data = f"data: {event}\n\n".encode()
            writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            await writer.drain()
            if rule.chunk_latency_s:
                await asyncio.sleep(rule.chunk_latency_s)
        if rule.fault == "truncate":
            return False  # the connection closes inside the chunked body: the client sees a broken stream
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True


async def _read_request(reader: asyncio.StreamReader) -> RecordedRequest | None:
    line = await reader.readline()
    if not line.strip():
        return None
    method, path, _version = line.decode("latin-1").split(" ", 2)
    headers: dict[str, str] = {}
    while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = header.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    raw = await reader.readexactly(int(headers.get("content-length", "0")))
    authorization = headers.pop("authorization", None)
    api_key = authorization.removeprefix("Bearer ").strip() if authorization else None
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = None
    return RecordedRequest(method, path, headers, body if isinstance(body, dict) else None, api_key)


def _head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _send_raw(writer: asyncio.StreamWriter, status: int, payload: bytes, headers: dict[str, str]) -> bool:
    head = {"Content-Type": "application/json", "Content-Length": str(len(payload)), **headers}
    writer.write(_head(status, head) + payload)
    await writer.drain()
    return True


async def _send_json(writer: asyncio.StreamWriter, status: int, data: dict, headers: dict[str, str] | None = None):
    return await _send_raw(writer, status, json.dumps(data).encode(), headers or {})


def _error(message: str, kind: str, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": kind, "param": param, "code": None}}


def _content(message: dict) -> str:
    content = message.get("content")
    if isinstance(content, list):  # content parts
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content if isinstance(content, str) else ""


def _prompt_tokens(body: dict) -> int:
    return sum(len(_content(m)) for m in body.get("messages") or [] if isinstance(m, dict)) // 4


def _cap(text: str, max_tokens: Any) -> tuple[str, str]:
    """Cut the reply at ``max_tokens`` (4 characters a token) the way a real server stops: finish_reason 'length'."""
    if isinstance(max_tokens, int) and len(text) // 4 > max_tokens:
        return text[: max_tokens * 4], "length"
    return text, "stop"


def _completion(model: str, text: str, finish: str, usage: dict) -> dict:
    return {"id": "chatcmpl-scripted", "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
            "usage": usage}


def _chunk(model: str, delta: dict, finish: str | None) -> str:
    return json.dumps({"id": "chatcmpl-scripted", "object": "chat.completion.chunk", "created": int(time.time()),
                       "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


def load_script(path: str) -> dict:
    """Read a JSON script: ``{"rules": [...], "default_reply": ..., "llama_cpp": ..., "reject_params": [...]}``."""
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    options = {k: data[k] for k in ("default_reply", "llama_cpp", "model", "chunk_chars") if k in data}
    options["reject_params"] = tuple(data.get("reject_params", ()))
    options["rules"] = [Rule.from_json(rule) for rule in data.get("rules", [])]
    return options


async def _serve_forever(port: int, script: str | None) -> None:
    options = load_script(script) if script else {}
    rules = options.pop("rules", [])
    async with ScriptedLlm(rules, port=port, **options) as server:
        print(f"READY {server.base_url}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A scripted OpenAI-compatible server on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: any free port)")
    parser.add_argument("--script", help="JSON file with rules, default_reply, llama_cpp, reject_params")
    args = parser.parse_args(argv)
    asyncio.run(_serve_forever(args.port, args.script))


if __name__ == "__main__":
    main()
