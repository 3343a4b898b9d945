"""``metagpt-lsp doctor``: what works and what does not with the LLM endpoint the server would use, and the fix.

It resolves the endpoint exactly as the server does (a settings file, then ``OPENAI_BASE_URL``/``METAGPT_LSP_MODEL``,
then the embedded model) and probes it through the same :class:`~metagpt_lsp.agents.llm.client.LlmClient` the agents
use: reachable (``GET /models``), the models it serves, a chat completion, a stream, the structured-output mode the
client settles on (``json_schema``, ``json_object`` or tolerant ``text``), the context length where the server
reports it (llama.cpp's ``/props``, ``meta.n_ctx_train`` or vLLM's ``max_model_len`` in ``/v1/models``; the embedded
model's is the one it was started with) and the latency of a tiny request. For the embedded model it also checks the
installation and measures the cold start: launch to the first answer.

Each probe prints one line — ``ok``, ``warn``, ``FAIL`` or ``skip`` — and a failure says how to fix it. The exit
status is 1 when a probe failed, 0 otherwise. The API key is never printed: only whether it is set.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from metagpt_lsp.agents.llm import LlmEndpoint, LlmError, LlmSettings, resolve_endpoint

COLD_START_TARGET_S = 15.0
PING = [{"role": "user", "content": "Reply with the single word OK."}]
PING_AGAIN = [{"role": "user", "content": "Reply with the single word YES."}]
JSON_SCHEMA = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]}
JSON_ASK = [{"role": "user", "content": "What is 2 + 3? Reply in JSON: {\"answer\": the number}."}]
CONFIGURE = "set llm.baseUrl (or OPENAI_BASE_URL) to a running OpenAI-compatible server"


@dataclass
class Probe:
    """One line of the report: ``status`` is "ok", "warn", "FAIL" or "skip"."""

    name: str
    status: str
    detail: str
    fix: str = ""

    def render(self) -> str:
        line = f"  {self.status:4}  {self.name:13} {self.detail}"
        return line + (f"\n{'':21}fix: {self.fix}" if self.fix else "")


@dataclass
class DoctorReport:
    endpoint: str
    probes: list[Probe] = field(default_factory=list)
    cold_start_s: float | None = None

    @property
    def failed(self) -> bool:
        return any(probe.status == "FAIL" for probe in self.probes)

    def add(self, name: str, status: str, detail: str, fix: str = "") -> Probe:
        probe = Probe(name, status, detail, fix)
        self.probes.append(probe)
        return probe


def context_length(models: Mapping[str, Any] | None, props: Mapping[str, Any] | None) -> tuple[int, str] | None:
    """The context length a server reports, and where it said so; None when it does not."""
    if isinstance(props, Mapping):
        settings = props.get("default_generation_settings")
        for value in (props.get("n_ctx"), settings.get("n_ctx") if isinstance(settings, Mapping) else None):
            if isinstance(value, int) and value > 0:
                return value, "the server's /props"
    for model in (models or {}).get("data") or []:
        if not isinstance(model, Mapping):
            continue
        found = model.get("meta")
        meta: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        for value, where in ((model.get("max_model_len"), "max_model_len in /models"),
                             (model.get("context_length"), "context_length in /models"),
                             (meta.get("n_ctx_train"), "meta.n_ctx_train in /models (the model's training length)")):
            if isinstance(value, int) and value > 0:
                return value, where
    return None


async def _get_json(url: str, api_key: str | None, timeout_s: float) -> tuple[int, Any]:
    """GET a JSON document (stdlib HTTP in a thread: a probe must not depend on the openai client's internals)."""
    import urllib.error
    import urllib.request

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def fetch() -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout_s) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    status, body = await asyncio.to_thread(fetch)
    try:
        return status, json.loads(body)
    except ValueError:
        return status, None


async def _probe_models(report: DoctorReport, base_url: str, endpoint: LlmEndpoint,
                        timeout_s: float) -> dict | None:
    began = time.monotonic()
    try:
        status, models = await _get_json(f"{base_url}/models", endpoint.api_key, timeout_s)
    except Exception as error:  # noqa: BLE001 - every way of not answering is reported the same way
        reason = getattr(error, "reason", None) or f"{type(error).__name__}: {error}"
        report.add("reachable", "FAIL", f"cannot connect to {base_url}: {reason}",
                   f"start the server, or {CONFIGURE}")
        return None
    elapsed = time.monotonic() - began
    if status in (401, 403):
        said = "the API key was refused" if endpoint.api_key else "it wants an API key and none is set"
        report.add("reachable", "FAIL", f"{base_url}/models answered HTTP {status}: {said}",
                   "put a valid key in the variable named by llm.apiKeyEnv (OPENAI_API_KEY by default)")
        return None
    if status != 200:
        report.add("reachable", "warn", f"{base_url}/models answered HTTP {status} in {elapsed * 1000:.0f} ms",
                   "llm.baseUrl usually ends in /v1")
        return {}
    report.add("reachable", "ok", f"{base_url}/models answered in {elapsed * 1000:.0f} ms")
    ids = [str(m.get("id")) for m in (models or {}).get("data") or [] if isinstance(m, Mapping)]
    if not ids:
        report.add("models", "warn", "the server lists no models")
    elif endpoint.model in ids:
        report.add("models", "ok", f"{', '.join(ids[:5])}{' ...' if len(ids) > 5 else ''} (serves {endpoint.model})")
    else:
        report.add("models", "warn", f"{endpoint.model!r} is not among {', '.join(ids[:8])}",
                   "set llm.model (or METAGPT_LSP_MODEL) to one of them")
    return models if isinstance(models, dict) else {}


async def _probe_llm(report: DoctorReport, llm: Any) -> float | None:
    """Chat, streaming, structured output and latency through the agents' client; when chat answered (monotonic
    time), None when it failed."""
    began = time.monotonic()
    try:
        reply = await llm.complete(PING, max_tokens=8)
    except LlmError as error:
        report.add("chat", "FAIL", str(error), "see above; `metagpt-lsp doctor` again after the change")
        return None
    answered = time.monotonic()
    first = answered - began
    report.add("chat", "ok", f"answered {reply.text.strip()[:30]!r} in {first:.2f} s "
                             f"({reply.usage.prompt_tokens} prompt + {reply.usage.completion_tokens} completion "
                             "tokens)")
    try:
        began, first_delta, parts = time.monotonic(), None, []
        async for delta in llm.stream(PING_AGAIN, max_tokens=8):
            first_delta = first_delta or time.monotonic() - began
            parts.append(delta)
        report.add("streaming", "ok", f"{len(parts)} chunk(s), the first after {first_delta or 0:.2f} s")
    except LlmError as error:
        report.add("streaming", "FAIL", str(error), "inline completion needs streaming: use a server that streams")
    try:
        value = await llm.complete_json(JSON_ASK, JSON_SCHEMA, max_tokens=24)
        refused = f"; refused: {', '.join(sorted(llm.failed_modes))}" if llm.failed_modes else ""
        report.add("structured", "ok" if llm.structured_mode != "text" else "warn",
                   f"{llm.structured_mode} mode{refused} (2 + 3 -> {value.get('answer')!r})",
                   "" if llm.structured_mode != "text" else "JSON is parsed tolerantly; a server with JSON mode "
                                                            "answers more reliably")
    except LlmError as error:
        report.add("structured", "warn", str(error), "the team falls back to tolerant parsing; a stronger model helps")
    began = time.monotonic()
    try:
        await llm.complete([{"role": "user", "content": "Say hi."}], max_tokens=4)
        report.add("latency", "ok", f"a tiny request took {time.monotonic() - began:.2f} s")
    except LlmError as error:
        report.add("latency", "FAIL", str(error))
    return answered


async def diagnose(settings: LlmSettings, environ: Mapping[str, str] | None = None, *,
                   embedded_factory: Callable[[], Any] | None = None) -> DoctorReport:
    """Run every probe against the endpoint ``settings`` (and the environment) resolve to."""
    from metagpt_lsp.agents.llm import LlmClient

    endpoint = resolve_endpoint(settings, environ)
    settings = LlmSettings(**{**settings.__dict__, "max_retries": 0})
    report = DoctorReport("the embedded model" if endpoint.embedded else str(endpoint.base_url))
    embedded, base_url, context = None, endpoint.base_url, None
    if endpoint.embedded:
        from metagpt_lsp.agents.llm.embedded import CONTEXT_TOKENS, EmbeddedModel

        embedded = (embedded_factory or EmbeddedModel)()
        status = embedded.status()
        if not status.available:
            report.add("installed", "FAIL", "the embedded model is not installed", status.message)
            return report
        report.add("installed", "ok", status.message)
        launched = time.monotonic()
        try:
            base_url = await embedded.base_url()
        except LlmError as error:
            report.add("start", "FAIL", str(error).splitlines()[0], f"read the log above, or {CONFIGURE}")
            await embedded.stop()
            return report
        started = time.monotonic() - launched
        server = embedded.server
        pid = f" (pid {server.pid})" if server is not None and server.pid else ""
        report.add("start", "ok", f"the model server answered at {base_url} {started:.1f} s after launch{pid}")
        context = (CONTEXT_TOKENS, "the embedded model's n_ctx")
    llm = LlmClient(settings, LlmEndpoint(base_url, endpoint.model, endpoint.api_key, False))
    try:
        models = await _probe_models(report, base_url, endpoint, settings.connect_timeout_s + 5)
        if models is None:
            for name in ("chat", "streaming", "structured", "context", "latency"):
                report.add(name, "skip", "the server is not reachable")
            return report
        answered = await _probe_llm(report, llm)
        if endpoint.embedded and answered is not None:
            report.cold_start_s = answered - launched
            report.add("cold start", "ok" if report.cold_start_s <= COLD_START_TARGET_S else "warn",
                       f"first answer {report.cold_start_s:.1f} s after the launch (target <= "
                       f"{COLD_START_TARGET_S:g} s)")
        if context is None:
            props = None
            try:
                status_code, props = await _get_json(base_url.removesuffix("/v1") + "/props", endpoint.api_key, 5)
                props = props if status_code == 200 else None
            except Exception:  # noqa: BLE001 - a server without /props simply does not report it
                props = None
            context = context_length(models, props)
        if context is None:
            report.add("context", "warn", "the server does not report its context length",
                       "the team sends small prompts (one function); give the server >= 4096 tokens of context")
        else:
            report.add("context", "ok" if context[0] >= 4096 else "warn", f"{context[0]} tokens ({context[1]})",
                       "" if context[0] >= 4096 else "start the server with a context of at least 4096 tokens")
    finally:
        await llm.aclose()
        if embedded is not None:
            await embedded.stop()
    return report


def load_llm_settings(settings_path: str | None) -> LlmSettings:
    """The ``llm`` branch of an editor settings JSON file (bare or under ``metagptLsp``), or the defaults."""
    if settings_path is None:
        return LlmSettings()
    from ..settings import parse_settings

    with open(settings_path, encoding="utf-8") as handle:
        settings, problems = parse_settings(json.load(handle))
    for problem in problems:
        print(f"note: {problem}", file=sys.stderr)
    return settings.llm


def run_doctor(settings_path: str | None = None, base_url: str | None = None, model: str | None = None,
               out: TextIO | None = None, environ: Mapping[str, str] | None = None,
               embedded_factory: Callable[[], Any] | None = None) -> int:
    """Print the report; 1 when a probe failed, 2 when the settings file cannot be read, else 0."""
    out = out or sys.stdout
    try:
        settings = load_llm_settings(settings_path)
    except (OSError, ValueError) as error:
        print(f"metagpt-lsp doctor: cannot read settings from {settings_path}: {error}", file=out)
        return 2
    overrides = {key: value for key, value in (("base_url", base_url), ("model", model)) if value}
    settings = LlmSettings(**{**settings.__dict__, **overrides})
    endpoint = resolve_endpoint(settings, environ)
    where = "the embedded model" if endpoint.embedded else endpoint.base_url
    key = "set" if endpoint.api_key else "not set"
    print(f"metagpt-lsp doctor: {where}, model {endpoint.model}, API key {key} ({settings.api_key_env})", file=out,
          flush=True)
    report = asyncio.run(diagnose(settings, environ, embedded_factory=embedded_factory))
    for probe in report.probes:
        print(probe.render(), file=out)
    failed = [probe.name for probe in report.probes if probe.status == "FAIL"]
    if failed:
        print(f"{len(failed)} check(s) failed: {', '.join(failed)}.", file=out)
        return 1
    warned = sum(probe.status == "warn" for probe in report.probes)
    print(f"All checks passed{f' ({warned} warning(s))' if warned else ''}.", file=out)
    return 0
