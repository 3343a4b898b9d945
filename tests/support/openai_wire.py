"""The bytes the scripted LLM server reads and writes: minimal HTTP/1.1 framing and OpenAI chat-completion bodies.

Kept apart from :mod:`scripted_llm` so the server reads as "which rule answers, with what fault" while this module
holds the wire details: request parsing (Content-Length bodies), responses with Content-Length, chunked
Server-Sent Events, and the JSON shapes of ``chat.completion``, ``chat.completion.chunk`` and errors.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error"}
COMPLETION_ID = "chatcmpl-scripted"


async def read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str], bytes] | None:
    """``(method, path, headers with lower-case names, body)``, or None when the client closed the connection."""
    line = await reader.readline()
    if not line.strip():
        return None
    method, path, _version = line.decode("latin-1").split(" ", 2)
    headers: dict[str, str] = {}
    while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = header.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return method, path, headers, await reader.readexactly(int(headers.get("content-length", "0")))


def head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def send_raw(writer: asyncio.StreamWriter, status: int, payload: bytes,
                   headers: dict[str, str] | None = None) -> bool:
    """A whole response with Content-Length; True: the connection can serve the next request."""
    writer.write(head(status, {"Content-Type": "application/json", "Content-Length": str(len(payload)),
                               **(headers or {})}) + payload)
    await writer.drain()
    return True


async def send_json(writer: asyncio.StreamWriter, status: int, data: dict,
                    headers: dict[str, str] | None = None) -> bool:
    return await send_raw(writer, status, json.dumps(data).encode(), headers)


def start_event_stream(writer: asyncio.StreamWriter) -> None:
    writer.write(head(200, {"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                            "Transfer-Encoding": "chunked"}))


async def send_event(writer: asyncio.StreamWriter, data: str) -> None:
    """One ``data: ...`` Server-Sent Event as one HTTP chunk."""
    event = f"data: {data}\n\n".encode()
    writer.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
    await writer.drain()


async def end_event_stream(writer: asyncio.StreamWriter) -> None:
    writer.write(b"0\r\n\r\n")
    await writer.drain()


def error_body(message: str, kind: str, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": kind, "param": param, "code": None}}


def message_text(message: Any) -> str:
    """A chat message's text, whether ``content`` is a string or a list of parts."""
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content if isinstance(content, str) else ""


def usage_for(body: dict, reply: str) -> dict:
    """Usage estimated at four characters a token, over every message's content and over the reply."""
    prompt = sum(len(message_text(m)) for m in body.get("messages") or []) // 4
    return {"prompt_tokens": prompt, "completion_tokens": len(reply) // 4, "total_tokens": prompt + len(reply) // 4}


def capped(text: str, max_tokens: Any) -> tuple[str, str]:
    """Cut the reply at ``max_tokens`` (4 characters a token) the way a real server stops: finish_reason 'length'."""
    if isinstance(max_tokens, int) and len(text) // 4 > max_tokens:
        return text[: max_tokens * 4], "length"
    return text, "stop"


def completion_body(model: str, text: str, finish: str | None, usage: dict) -> dict:
    return {"id": COMPLETION_ID, "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
            "usage": usage}


def chunk_body(model: str, delta: dict | None, finish: str | None, usage: dict | None = None) -> str:
    """A ``chat.completion.chunk``: a delta, or (``delta`` None) the usage chunk with no choices."""
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    chunk = {"id": COMPLETION_ID, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
             "choices": choices}
    if usage is not None:
        chunk["usage"] = usage
    return json.dumps(chunk)


def text_chunk_body(model: str, text: str, finish: str | None) -> str:
    """A streamed ``text_completion`` chunk (``/v1/completions``): raw text, no role or delta."""
    return json.dumps({"id": "cmpl-scripted", "object": "text_completion", "created": int(time.time()), "model": model,
                       "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}]})


def text_completion_body(model: str, text: str, finish: str | None, usage: dict) -> dict:
    return {"id": "cmpl-scripted", "object": "text_completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}], "usage": usage}


def cut_at_stop(text: str, stop: Any) -> tuple[str, bool]:
    """The text up to the first of the ``stop`` strings, as a real server stops; True when one was found."""
    stops = [stop] if isinstance(stop, str) else [s for s in stop or [] if isinstance(s, str) and s]
    found = [text.index(s) for s in stops if s in text]
    return (text[:min(found)], True) if found else (text, False)
