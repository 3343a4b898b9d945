"""The scripted OpenAI-compatible server itself, checked over raw HTTP and with the real ``openai`` client."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import openai
import pytest

from metagpt_lsp.testing.scripted_llm import Rule, ScriptedLlm


async def raw_http(server: ScriptedLlm, method: str, path: str, body: dict | None = None,
                   headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """Send one request with Connection: close and read the answer to EOF (status, headers, raw body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    payload = json.dumps(body).encode() if body is not None else b""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close", f"Content-Length: {len(payload)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    try:
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
        await writer.drain()
        response = await reader.read()
    finally:  # a cancelled client hangs up, as real clients do
        writer.close()
    head, _, rest = response.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    parsed = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in header_lines)}
    return int(status_line.split()[1]), parsed, rest


def chat(text: str, **extra) -> dict:
    return {"model": "m", "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": text}],
            **extra}


def openai_client(server: ScriptedLlm) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)


async def test_models_are_listed_for_the_openai_client(scripted_llm):
    models = await openai_client(scripted_llm).models.list()
    assert [m.id for m in models.data] == ["scripted-model"]


async def test_rules_pick_replies_by_last_user_message_any_message_and_predicate(scripted_llm):
    scripted_llm.script(
        Rule(reply="from last user", last_user=r"^explain"),
        Rule(reply="from system", any_message=r"you review code"),
        Rule(reply=lambda body: f"temperature {body['temperature']}", when=lambda body: "temperature" in body),
    )
    client = openai_client(scripted_llm)

    async def ask(messages, **extra):
        reply = await client.chat.completions.create(model="m", messages=messages, **extra)
        return reply.choices[0].message.content

    assert await ask([{"role": "user", "content": "explain this"}]) == "from last user"
    assert await ask([{"role": "user", "content": "explain"}, {"role": "user", "content": "no"}]) == "OK"
    assert await ask([{"role": "system", "content": "you review code"}, {"role": "user", "content": "x"}]) == (
        "from system")
    assert await ask([{"role": "user", "content": "x"}], temperature=0.5) == "temperature 0.5"


async def test_a_rule_with_times_is_used_up_then_the_next_rule_answers(scripted_llm):
    scripted_llm.script(Rule(fault="500", times=2), Rule(reply="recovered"))
    statuses = [(await raw_http(scripted_llm, "POST", "/v1/chat/completions", chat("hi")))[0] for _ in range(3)]
    assert statuses == [500, 500, 200]


async def test_usage_is_estimated_from_characters_and_max_tokens_cuts_the_reply(scripted_llm):
    scripted_llm.script(Rule(reply="x" * 80))
    status, _, body = await raw_http(scripted_llm, "POST", "/v1/chat/completions", chat("a" * 40))
    reply = json.loads(body)
    assert status == 200 and reply["usage"] == {"prompt_tokens": 12, "completion_tokens": 20, "total_tokens": 32}
    assert reply["choices"][0]["finish_reason"] == "stop"
    _, _, body = await raw_http(scripted_llm, "POST", "/v1/chat/completions", chat("a", max_tokens=5))
    capped = json.loads(body)["choices"][0]
    assert capped["message"]["content"] == "x" * 20 and capped["finish_reason"] == "length"


async def test_streaming_sends_sse_chunks_a_finish_reason_usage_and_done(scripted_llm):
    scripted_llm.script(Rule(reply="def add(a, b):\n    return a + b\n"))
    stream = await openai_client(scripted_llm).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "add"}], stream=True, stream_options={"include_usage": True})
    deltas, finishes, usage = [], [], None
    async for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            deltas.append(choice.delta.content or "")
            finishes.append(choice.finish_reason)
    assert "".join(deltas) == "def add(a, b):\n    return a + b\n"
    assert len([d for d in deltas if d]) > 1 and finishes[-1] == "stop"
    assert usage.completion_tokens == len("def add(a, b):\n    return a + b\n") // 4
    _, headers, raw = await raw_http(scripted_llm, "POST", "/v1/chat/completions", chat("x", stream=True))
    assert headers["content-type"] == "text/event-stream" and b"data: [DONE]\n\n" in raw


async def test_faults_429_500_malformed(scripted_llm):
    scripted_llm.script(Rule(fault="429", retry_after_s=3, last_user="rate"), Rule(fault="500", last_user="boom"),
                        Rule(fault="malformed", last_user="junk"))
    status, headers, body = await raw_http(scripted_llm, "POST", "/v1/chat/completions", chat("rate"))
    assert status == 429 and headers["retry-after"] == "3" and json.loads(body)["error"]["type"] == "rate_limit_error"
    status, _, _ = await raw_http(scripted_llm, "POST", "/v1/chat/completions", chat("boom"))
    assert status == 500
    status, _, body = await raw_http(scripted_llm, "POST", "/v1/chat/completions", chat("junk"))
    assert status == 200
    with pytest.raises(ValueError):
        json.loads(body)


async def test_truncated_replies_end_inside_the_body(scripted_llm):
    scripted_llm.script(Rule(reply="a long reply " * 10, fault="truncate"))
    _, headers, body = await raw_http(scripted_llm, "POST", "/v1/chat/completions", chat("x"))
    assert len(body) < int(headers["content-length"])
    _, _, raw = await raw_http(scripted_llm, "POST", "/v1/chat/completions", chat("x", stream=True))
    assert b"[DONE]" not in raw and b'"finish_reason": "stop"' not in raw and not raw.endswith(b"0\r\n\r\n")
    scripted_llm.script(Rule(reply="a long reply " * 10, fault="unfinished"))
    _, _, raw = await raw_http(scripted_llm, "POST", "/v1/chat/completions", chat("x", stream=True))
    assert b"[DONE]" not in raw and b'"finish_reason": "stop"' not in raw and raw.endswith(b"0\r\n\r\n")


async def test_hang_lasts_until_the_client_disconnects(scripted_llm):
    scripted_llm.script(Rule(fault="hang"))
    request = asyncio.create_task(raw_http(scripted_llm, "POST", "/v1/chat/completions", chat("x")))
    (recorded,) = await scripted_llm.wait_for_requests(1)
    assert not request.done() and not recorded.disconnected.is_set()
    request.cancel()
    await asyncio.wait_for(recorded.disconnected.wait(), 5)


async def test_llama_cpp_mode_refuses_json_schema_but_takes_json_object():
    async with ScriptedLlm([Rule(reply='{"a": 1}')], llama_cpp=True) as server:
        schema_format = {"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object"}}}
        status, _, _ = await raw_http(server, "POST", "/v1/chat/completions", chat("x", response_format=schema_format))
        assert status == 500
        object_format = {"type": "json_object", "schema": {"type": "object"}}
        request = chat("x", response_format=object_format)
        status, _, body = await raw_http(server, "POST", "/v1/chat/completions", request)
        assert status == 200 and json.loads(body)["choices"][0]["message"]["content"] == '{"a": 1}'


async def test_rejected_params_get_an_openai_style_400():
    async with ScriptedLlm(reject_params=("repeat_penalty",)) as server:
        status, _, body = await raw_http(server, "POST", "/v1/chat/completions", chat("x", repeat_penalty=1.1))
        assert status == 400 and json.loads(body)["error"]["param"] == "repeat_penalty"


async def test_requests_are_recorded_with_the_key_kept_apart_from_headers(scripted_llm):
    await openai_client(scripted_llm).chat.completions.create(model="m", messages=[{"role": "user", "content": "q"}])
    (recorded,) = scripted_llm.completions
    assert recorded.method == "POST" and recorded.path == "/v1/chat/completions"
    assert recorded.api_key == "sk-test" and "authorization" not in recorded.headers
    assert recorded.last_user_message == "q" and recorded.body["model"] == "m"
    status, _, _ = await raw_http(scripted_llm, "GET", "/v1/nothing")
    assert status == 404 and scripted_llm.requests[-1].api_key is None


def test_cli_serves_a_json_script_until_terminated(tmp_path: Path):
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"default_reply": "default", "rules": [{"last_user": "ping", "reply": "pong"}]}))
    scripted = Path(__file__).resolve().parents[1] / "support" / "scripted_llm.py"
    process = subprocess.Popen([sys.executable, str(scripted), "--port", "0",
                                "--script", str(script)], stdout=subprocess.PIPE, text=True)
    try:
        ready = process.stdout.readline().split()
        assert ready[0] == "READY"
        client = openai.OpenAI(base_url=ready[1], api_key="sk-test", max_retries=0)
        answers = [client.chat.completions.create(model="m", messages=[{"role": "user", "content": text}])
                   .choices[0].message.content for text in ("ping", "other")]
        assert answers == ["pong", "default"]
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


async def test_server_latency_delays_every_completion():
    async with ScriptedLlm(latency_s=0.2) as server:
        started = asyncio.get_running_loop().time()
        status, _, _ = await raw_http(server, "POST", "/v1/chat/completions", chat("x"))
        assert status == 200 and asyncio.get_running_loop().time() - started >= 0.2
