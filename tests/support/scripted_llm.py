"""A scripted OpenAI-compatible server on 127.0.0.1 for tests and benchmarks: real HTTP, scripted replies, faults.

It speaks just enough HTTP/1.1 (keep-alive, Content-Length bodies, chunked SSE streams) for the ``openai`` client and
any other OpenAI-compatible client: ``GET /v1/models``, ``POST /v1/chat/completions`` and ``POST /v1/completions`` (raw
prompts, as fill-in-the-middle sends them; ``completions_endpoint=False`` answers it with HTTP 404 like a chat-only
hosted API), streaming or not, with ``usage`` estimated as characters // 4 and ``stop`` strings honoured. Each request
is answered by the first matching :class:`Rule` — a regex on the last user message, on any message or on a raw
``prompt``, or a predicate on the request JSON — with a reply text or a fault: latency, HTTP 429 with Retry-After, HTTP
500, a malformed JSON body, a stream cut off mid-way (``truncate``: the connection drops inside the body;
``unfinished``: the body ends cleanly, without a finish_reason or ``[DONE]``), or a hang that lasts until the client
disconnects. ``latency_s`` delays every completion (benchmarks: a fixed cost per call). ``llama_cpp=True`` mimics the
embedded llama.cpp server (``json_schema`` answers HTTP 500, ``json_object`` works); ``reject_params`` mimics OpenAI's
HTTP 400 on parameters it does not know.

Every request is recorded (the API key apart from the other headers) so tests can assert on prompts and on what
reached the wire. In tests: ``async with ScriptedLlm(rules) as server`` (or the ``scripted_llm`` fixture); for
benchmarks and editors: ``python tests/scripted_llm.py --port P --script script.json`` prints ``READY <base_url>``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from metagpt_lsp.testing.openai_wire import (
    capped,
    chunk_body,
    completion_body,
    cut_at_stop,
    end_event_stream,
    error_body,
    head,
    message_text,
    read_request,
    send_event,
    send_json,
    send_raw,
    start_event_stream,
    text_chunk_body,
    text_completion_body,
    usage_for,
)

FAULTS = ("429", "500", "malformed", "truncate", "unfinished", "hang")


@dataclass
class Rule:
    """When a request matches, answer with ``reply`` (text, or a function of the request JSON) or with ``fault``."""

    reply: str | Callable[[dict], str] = ""
    last_user: str | None = None  # regex searched in the last user message
    any_message: str | None = None  # regex searched in every message's content
    prompt: str | None = None  # regex searched in a raw prompt (``/v1/completions``); such a rule answers only there
    when: Callable[[dict], bool] | None = None
    fault: str | None = None  # one of FAULTS
    latency_s: float = 0.0  # waited before answering (or before the fault)
    chunk_latency_s: float = 0.0  # waited between stream chunks
    retry_after_s: float | None = None  # sent with a 429
    times: int | None = None  # used at most this many times, then skipped
    gate: asyncio.Event | None = None  # waited for before answering: a model exactly as slow as the test wants
    used: int = 0

    def __post_init__(self) -> None:
        if self.fault is not None and self.fault not in FAULTS:
            raise ValueError(f"unknown fault {self.fault!r}; expected one of {FAULTS}")

    def matches(self, body: dict) -> bool:
        if self.times is not None and self.used >= self.times:
            return False
        messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
        if self.last_user is not None:
            users = [message_text(m) for m in messages if m.get("role") == "user"]
            if not users or not re.search(self.last_user, users[-1]):
                return False
        if self.any_message is not None and not any(re.search(self.any_message, message_text(m)) for m in messages):
            return False
        if self.prompt is not None and not (isinstance(body.get("prompt"), str) and re.search(self.prompt,
                                                                                                body["prompt"])):
            return False
        return self.when is None or bool(self.when(body))

    @classmethod
    def from_json(cls, data: dict) -> Rule:
        known = {"reply", "last_user", "any_message", "prompt", "fault", "latency_s", "chunk_latency_s",
                 "retry_after_s", "times"}
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
        users = [message_text(m) for m in (self.body or {}).get("messages") or [] if m.get("role") == "user"]
        return users[-1] if users else ""

    @property
    def prompt(self) -> str:
        """The raw prompt of a ``/v1/completions`` request ("" for chat)."""
        prompt = (self.body or {}).get("prompt")
        return prompt if isinstance(prompt, str) else ""

    @property
    def response_format_type(self) -> str | None:
        return ((self.body or {}).get("response_format") or {}).get("type")


class ScriptedLlm:
    """The server: ``rules`` are tried in order; ``base_url`` is ready once started."""

    def __init__(self, rules: list[Rule] | tuple[Rule, ...] = (), *, default_reply: str = "OK",
                 llama_cpp: bool = False, reject_params: tuple[str, ...] = (), model: str = "scripted-model",
                 port: int = 0, chunk_chars: int = 8, latency_s: float = 0.0,
                 completions_endpoint: bool = True) -> None:
        self.rules = list(rules)
        self.completions_endpoint = completions_endpoint
        self.latency_s = latency_s
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

    @property
    def text_completions(self) -> list[RecordedRequest]:
        """The raw-prompt requests (``/v1/completions``), answered or not."""
        return [r for r in self.requests if r.path.rstrip("/").endswith("/v1/completions")]

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
            while (raw := await read_request(reader)) is not None:
                request = _recorded(*raw)
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
            return await send_json(writer, 200, {"object": "list", "data": data})
        raw_prompt = req.path.rstrip("/").endswith("/v1/completions") and self.completions_endpoint
        if req.method != "POST" or not (req.path.rstrip("/").endswith("/chat/completions") or raw_prompt):
            return await send_json(writer, 404, error_body(f"no route for {req.method} {req.path}", "not_found"))
        body = req.body
        if body is None:
            return await send_json(writer, 400, error_body("the request body is not JSON", "invalid_request_error"))
        if self.llama_cpp and req.response_format_type == "json_schema":
            return await send_json(writer, 500, error_body("json_schema is not supported here", "server_error"))
        for name in self.reject_params:
            if name in body:
                message = f"Unrecognized request argument supplied: {name}"
                return await send_json(writer, 400, error_body(message, "invalid_request_error", param=name))
        rules = [r for r in self.rules if raw_prompt or r.prompt is None]
        rule = next((r for r in rules if r.matches(body)), None) or Rule(reply=self.default_reply)
        rule.used += 1
        if self.latency_s + rule.latency_s:
            await asyncio.sleep(self.latency_s + rule.latency_s)
        if rule.gate is not None:
            await rule.gate.wait()
        if rule.fault == "hang":
            while await reader.read(4096):
                pass
            req.disconnected.set()
            return False
        if rule.fault == "429":
            headers = {} if rule.retry_after_s is None else {"Retry-After": f"{rule.retry_after_s:g}"}
            rate_limited = error_body("Rate limit reached (scripted)", "rate_limit_error")
            return await send_json(writer, 429, rate_limited, headers)
        if rule.fault == "500":
            return await send_json(writer, 500, error_body("scripted internal error", "server_error"))
        return await self._reply(rule, body, writer)

    async def _reply(self, rule: Rule, body: dict, writer: asyncio.StreamWriter) -> bool:
        text, stopped = cut_at_stop(rule.reply(body) if callable(rule.reply) else rule.reply, body.get("stop"))
        text, finish = capped(text, body.get("max_tokens"))
        finish = "stop" if stopped and finish != "length" else finish
        finish = None if rule.fault == "unfinished" else finish
        usage = usage_for(body, text)
        if isinstance(body.get("prompt"), str):
            return await self._text_completion(rule, body, text, finish, writer)
        if body.get("stream"):
            return await self._stream(rule, body, text, finish, usage, writer)
        if rule.fault == "malformed":
            return await send_raw(writer, 200, b'{"id": "chatcmpl-scripted", "choices": [{"message": ')
        if rule.fault == "truncate":
            payload = json.dumps(completion_body(self.model, text, finish, usage)).encode()
            writer.write(head(200, {"Content-Type": "application/json", "Content-Length": str(len(payload))})
                         + payload[: len(payload) // 2])
            await writer.drain()
            return False
        return await send_json(writer, 200, completion_body(self.model, text, finish, usage))

    async def _text_completion(self, rule: Rule, body: dict, text: str, finish: str | None,
                               writer: asyncio.StreamWriter) -> bool:
        """A ``/v1/completions`` answer: raw text, whole or as a stream of ``text_completion`` chunks."""
        prompt_tokens = len(body["prompt"]) // 4
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": len(text) // 4,
                 "total_tokens": prompt_tokens + len(text) // 4}
        if not body.get("stream"):
            return await send_json(writer, 200, text_completion_body(self.model, text, finish, usage))
        start_event_stream(writer)
        pieces = [text[i: i + self.chunk_chars] for i in range(0, len(text), self.chunk_chars)]
        if rule.fault in ("truncate", "unfinished"):
            pieces = pieces[: max(1, len(pieces) // 2)]
        events = [text_chunk_body(self.model, piece, None) for piece in pieces]
        if rule.fault is None:
            events += [text_chunk_body(self.model, "", finish), "[DONE]"]
        for event in events:
            await send_event(writer, event)
            if rule.chunk_latency_s:
                await asyncio.sleep(rule.chunk_latency_s)
        if rule.fault == "truncate":
            return False
        await end_event_stream(writer)
        return True

    async def _stream(self, rule: Rule, body: dict, text: str, finish: str | None, usage: dict,
                      writer: asyncio.StreamWriter) -> bool:
        start_event_stream(writer)
        pieces = [text[i: i + self.chunk_chars] for i in range(0, len(text), self.chunk_chars)] or [""]
        if rule.fault in ("truncate", "unfinished"):
            pieces = pieces[: max(1, len(pieces) // 2)]
        events = [chunk_body(self.model, {"role": "assistant", "content": ""}, None)]
        events += [chunk_body(self.model, {"content": piece}, None) for piece in pieces]
        if rule.fault == "malformed":
            events.append('{"id": "chatcmpl-scripted", "choices": [{"delta": ')
        if rule.fault is None:
            events.append(chunk_body(self.model, {}, finish))
            if (body.get("stream_options") or {}).get("include_usage"):
                events.append(chunk_body(self.model, None, None, usage))
            events.append("[DONE]")
        for event in events:
            await send_event(writer, event)
            if rule.chunk_latency_s:
                await asyncio.sleep(rule.chunk_latency_s)
        if rule.fault == "truncate":
            return False  # the connection closes inside the chunked body: the client sees a broken stream
        await end_event_stream(writer)
        return True


def _recorded(method: str, path: str, headers: dict[str, str], raw: bytes) -> RecordedRequest:
    """The request as recorded: the bearer token moves out of the headers into ``api_key``."""
    authorization = headers.pop("authorization", None)
    api_key = authorization.removeprefix("Bearer ").strip() if authorization else None
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = None
    return RecordedRequest(method, path, headers, body if isinstance(body, dict) else None, api_key)


@contextlib.contextmanager
def running_in_thread(server: ScriptedLlm) -> Iterator[ScriptedLlm]:
    """``server`` started on an event loop of its own thread in this process, for tests whose own loop blocks (a real
    editor driven by subprocess calls) and that read the requests it received; stopped after."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="scripted-llm", daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(30)
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


def load_script(path: str) -> dict:
    """Read a JSON script: ``{"rules": [{"last_user": ..., "reply": ..., "fault": ...}], "default_reply": ...,
    "latency_s": ..., "llama_cpp": ..., "reject_params": [...]}`` (rule keys as in :class:`Rule`)."""
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    options = {k: data[k] for k in ("default_reply", "llama_cpp", "model", "chunk_chars", "latency_s",
                                    "completions_endpoint") if k in data}
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
    parser.add_argument("--script", help="JSON file with rules, default_reply, latency_s, llama_cpp, reject_params")
    args = parser.parse_args(argv)
    asyncio.run(_serve_forever(args.port, args.script))


if __name__ == "__main__":
    main()
