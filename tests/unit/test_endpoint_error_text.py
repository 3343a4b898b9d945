"""What an endpoint says when it fails reaches the log and the user, but never its secrets: an endpoint that echoes
the request's API key (or any bearer token or ``sk-`` key) in its error text has it redacted, and the text is
shortened — through the client over real HTTP, and through the real server's popups and log."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from lsprotocol import types

from metagpt_lsp.agents.llm.client import LlmClient
from metagpt_lsp.agents.llm.errors import LlmError
from metagpt_lsp.agents.llm.settings import LlmEndpoint, LlmSettings
from metagpt_lsp.testing.lsp_support import WAIT_S, EditorDocument
from metagpt_lsp.testing.openai_wire import error_body, send_json
from metagpt_lsp.testing.sample_module import STATS
from metagpt_lsp.testing.scripted_editor import GitProject, scripted_session
from metagpt_lsp.testing.scripted_llm import RecordedRequest, ScriptedLlm

KEY = "local-7f3a9c2e5b1d4e60"  # not shaped like any known key: only knowing it as the key can redact it
OTHER_KEY = "sk-proj-Zx81mQ0vRt5kLp2WnY7c"
ASK = [{"role": "user", "content": "Why ZeroDivisionError?"}]
SCHEMA = {"type": "object", "properties": {"cause": {"type": "string"}}, "required": ["cause"]}


class KeyEchoingLlm(ScriptedLlm):
    """An endpoint that fails every completion with ``status`` and an error text that repeats the request's
    Authorization header, its key and another key, followed by a long tail."""

    def __init__(self, status: int) -> None:
        super().__init__()
        self.status = status

    async def _answer(self, req: RecordedRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        if not req.path.rstrip("/").endswith("/chat/completions"):
            return await super()._answer(req, reader, writer)
        message = (f"upstream refused Authorization: Bearer {req.api_key} (key {req.api_key!r}, api_key={req.api_key}"
                   f", fallback {OTHER_KEY}) " + "details " * 400)
        return await send_json(writer, self.status, error_body(message, "invalid_request_error"))


def no_key_in(text: str) -> bool:
    return KEY not in text and OTHER_KEY not in text and KEY[:12] not in text and OTHER_KEY[:12] not in text


@pytest.mark.parametrize("status", [400, 404, 429, 500, 503])
async def test_the_key_an_endpoint_echoes_is_redacted_from_the_error_and_the_log(status: int, caplog):
    for name in (None, "openai", "httpx", "httpcore", "metagpt_lsp"):
        caplog.set_level(logging.DEBUG, logger=name)
    async with KeyEchoingLlm(status) as server:
        client = LlmClient(LlmSettings(max_retries=1), LlmEndpoint(server.base_url, server.model, KEY, False),
                           backoff_base_s=0.01, backoff_max_s=0.02)
        for ask in (client.complete(ASK), client.complete_json(ASK, SCHEMA)):
            with pytest.raises(LlmError) as raised:
                await ask
            message = str(raised.value)
            assert f"HTTP {status}" in message and "upstream refused Authorization: Bearer [redacted]" in message
            assert no_key_in(message) and no_key_in(raised.value.server_text) and len(message) < 600
            logging.getLogger("test").debug("the failure in full", exc_info=raised.value)  # as the broker logs it
        await client.aclose()
        assert all(request.api_key == KEY for request in server.completions)
    logged = "\n".join(f"{record.getMessage()} {record.args!r} {record.exc_text or ''}" for record in caplog.records)
    for record in caplog.records:
        logged += logging.Formatter().format(record)
    assert caplog.records and no_key_in(logged)


async def test_the_editor_never_sees_the_key_an_endpoint_echoes(project: GitProject, review_cache: Path,
                                                                monkeypatch: pytest.MonkeyPatch, caplog):
    """Not in a popup, not in window/logMessage (at debug), not on the server's stderr."""
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("METAGPT_TEST_ENDPOINT_KEY", KEY)
    options = {"llm": {"apiKeyEnv": "METAGPT_TEST_ENDPOINT_KEY", "maxRetries": 0}, "logLevel": "debug"}
    async with KeyEchoingLlm(400) as llm, scripted_session("visual-studio-code", llm, project, review_cache,
                                                            options) as client:
        doc = client.track(EditorDocument(project.uri("stats.py"), STATS))
        doc.open(client)
        start = doc.text.index("return sum(values) / len(values)")
        diagnostic = types.Diagnostic(range=doc.range_of(start, start + 6), message="wrong", source="pyright",
                                      severity=types.DiagnosticSeverity.Error)
        actions = await asyncio.wait_for(client.text_document_code_action_async(types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=doc.uri), range=doc.range_of(start, start),
            context=types.CodeActionContext(diagnostics=[diagnostic]))), WAIT_S)
        (fix,) = [a for a in actions if isinstance(a, types.CodeAction) and a.title.startswith("Explain and fix")]
        resolved = await asyncio.wait_for(client.code_action_resolve_async(fix), WAIT_S)
        assert resolved.edit is None
        shown = await client.popup("Explain and fix", "HTTP 400", "Bearer [redacted]")
        assert llm.completions and all(request.api_key == KEY for request in llm.completions)
        told = [m.message for m in client.seen(types.WINDOW_SHOW_MESSAGE)]
        logged = [m.message for m in client.seen(types.WINDOW_LOG_MESSAGE)]
        assert any("HTTP 400" in line for line in logged), "the failure is not in the log"
        assert no_key_in("\n".join(told + logged)) and len(shown.message) < 1000
    stderr = [r.getMessage() for r in caplog.records if r.name.startswith("pytest_lsp")]
    assert any("HTTP 400" in line for line in stderr) and no_key_in("\n".join(stderr))
