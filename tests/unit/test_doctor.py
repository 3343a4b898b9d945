"""``metagpt-lsp doctor``: the real command against the scripted OpenAI-compatible server (llama.cpp emulation), a
dead port, a failing endpoint and a missing embedded model: what works, what does not, the fix and the exit
status."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import pytest

from metagpt_lsp.agents.llm.embedded.model import EmbeddedModel, EmbeddedStatus
from metagpt_lsp.agents.llm.embedded.server import free_port
from metagpt_lsp.agents.llm.settings import LlmSettings
from metagpt_lsp.server.cli.doctor import context_length, diagnose
from metagpt_lsp.testing.scripted_llm import Rule, ScriptedLlm

SECRET = "sk-doctor-secret-1234"


async def doctor(*args: str, environ: dict[str, str] | None = None) -> tuple[int, str]:
    """Run the installed command line (``python -m metagpt_lsp.server doctor ...``); exit status and output."""
    env = {key: value for key, value in os.environ.items() if key not in ("OPENAI_BASE_URL", "METAGPT_LSP_MODEL")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "metagpt_lsp.server", "doctor", *args, env={**env, **(environ or {})},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode, output.decode()


def line_of(output: str, probe: str) -> str:
    return next(line for line in output.splitlines() if line.split()[1:2] == [probe])


async def test_every_probe_passes_against_a_llama_cpp_like_server_and_the_key_stays_secret():
    rules = [Rule('{"answer": 5}', last_user=r"2 \+ 3")]
    async with ScriptedLlm(rules, llama_cpp=True, model="qwen-coder") as server:
        status, output = await doctor("--base-url", server.base_url, "--model", "qwen-coder",
                                      environ={"OPENAI_API_KEY": SECRET})
        assert status == 0, output
        for probe in ("reachable", "models", "chat", "streaming", "structured", "latency"):
            assert line_of(output, probe).split()[0] == "ok", output
        assert "json_object mode; refused: json_schema" in line_of(output, "structured")
        assert "5" in line_of(output, "structured")
        assert line_of(output, "context").split()[0] == "warn" and "does not report" in output
        assert "All checks passed" in output
        assert SECRET not in output and "API key set" in output
        assert {request.api_key for request in server.requests} == {SECRET}, "the key goes to its endpoint only"
        streamed = [r for r in server.completions if (r.body or {}).get("stream")]
        assert streamed, "streaming was really tried"


async def test_a_dead_port_fails_clearly_with_the_fix_and_exit_status_1():
    port = free_port()
    status, output = await doctor("--base-url", f"http://127.0.0.1:{port}/v1")
    assert status == 1
    reachable = line_of(output, "reachable")
    assert reachable.split()[0] == "FAIL" and f"127.0.0.1:{port}" in reachable and "refused" in reachable.lower()
    assert "fix: start the server, or set llm.baseUrl" in output
    assert line_of(output, "chat").split()[0] == "skip"
    assert "1 check(s) failed: reachable" in output
    assert "Traceback" not in output


async def test_an_endpoint_that_fails_every_chat_fails_the_chat_check():
    async with ScriptedLlm([Rule(fault="500")], model="m") as server:
        status, output = await doctor("--base-url", server.base_url, "--model", "m")
    assert status == 1, output
    chat = line_of(output, "chat")
    assert chat.split()[0] == "FAIL" and "HTTP 500" in chat
    assert line_of(output, "reachable").split()[0] == "ok"


async def test_a_model_the_server_does_not_list_is_a_warning_that_names_the_ones_it_has():
    async with ScriptedLlm(model="served-model") as server:
        status, output = await doctor("--base-url", server.base_url, "--model", "missing-model")
    models = line_of(output, "models")
    assert models.split()[0] == "warn" and "served-model" in models and "'missing-model'" in models
    assert "set llm.model" in output
    assert status == 0


async def test_settings_file_is_read_like_the_editor_sends_it(tmp_path):
    async with ScriptedLlm(model="from-settings") as server:
        settings = tmp_path / "settings.json"
        settings.write_text(json.dumps({"metagptLsp": {"llm": {"baseUrl": server.base_url, "model": "from-settings"}}}))
        status, output = await doctor("--settings", str(settings))
    assert status == 0, output
    assert f"metagpt-lsp doctor: {server.base_url}, model from-settings" in output


async def test_a_missing_embedded_model_is_one_failure_that_says_what_to_install():
    missing = EmbeddedStatus(False, "No LLM endpoint is configured and the embedded model is not installed. Install "
                                    "it with pip install 'metagpt-lsp[local]'.", ("llama-cpp-python[server]",))
    report = await diagnose(LlmSettings(), environ={}, embedded_factory=lambda: EmbeddedModel(status=lambda: missing))
    assert report.failed
    (probe,) = report.probes
    assert probe.name == "installed" and probe.status == "FAIL" and "metagpt-lsp[local]" in probe.fix


def test_context_length_is_read_where_servers_report_it():
    assert context_length({}, {"default_generation_settings": {"n_ctx": 8192}}) == (8192, "the server's /props")
    assert context_length({}, {"n_ctx": 4096})[0] == 4096
    vllm = {"data": [{"id": "m", "max_model_len": 32768}]}
    assert context_length(vllm, None) == (32768, "max_model_len in /models")
    llama_server = {"data": [{"id": "m", "meta": {"n_ctx_train": 32768}}]}
    assert context_length(llama_server, None)[0] == 32768
    assert context_length({"data": [{"id": "m"}]}, {"error": "no"}) is None


@pytest.mark.embedded
@pytest.mark.timeout(600)
async def test_the_doctor_on_the_real_embedded_model_measures_the_cold_start():
    model = EmbeddedModel()
    if not model.status().available:
        pytest.skip(f"the [local] extra is not installed: {model.status().message}")
    report = await diagnose(LlmSettings(request_timeout_s=300), environ={})
    print("\n" + "\n".join(probe.render() for probe in report.probes))
    assert not report.failed, [probe.render() for probe in report.probes if probe.status == "FAIL"]
    assert report.cold_start_s is not None and report.cold_start_s < 120
    assert {probe.name for probe in report.probes} >= {"installed", "start", "chat", "streaming", "structured",
                                                       "context", "latency", "cold start"}
