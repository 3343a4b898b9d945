"""Where the team's LLM lives and how it is asked: the ``llm`` branch of the settings tree.

The editor's settings win over the environment; the environment (``OPENAI_BASE_URL``, ``METAGPT_LSP_MODEL`` and the
variable named by ``apiKeyEnv``, ``OPENAI_API_KEY`` by default) wins over the defaults. With no base URL anywhere the
embedded local model is used. The API key itself is never stored in settings, never logged, and only ever sent to
the endpoint it belongs to: settings name the *variable* that holds it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace

EMBEDDED_MODEL = "qwen2.5-coder-1.5b-instruct-q4_k_m"
EMBEDDED_REQUEST_TIMEOUT_S = 300.0
"""A small model on a few CPU cores takes far longer per answer than a hosted one (~90 prompt tokens/s on 2 cores)."""
EMBEDDED_TASK_DEADLINE_S = 900.0


@dataclass(frozen=True)
class LlmSettings:
    """The ``llm`` settings as the user wrote them (camelCase keys in JSON; None means "not set")."""

    base_url: str | None = None
    model: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    request_timeout_s: float = 60.0
    connect_timeout_s: float = 5.0
    task_deadline_s: float = 120.0
    max_retries: int = 2
    max_tokens: int = 512
    temperature: float = 0.0
    repeat_penalty: float = 1.1
    max_concurrent_requests: int = 2


@dataclass(frozen=True)
class LlmEndpoint:
    """A resolved endpoint: where to send requests, which model, and the key (kept out of ``repr``)."""

    base_url: str | None
    model: str
    api_key: str | None
    embedded: bool

    def __repr__(self) -> str:
        key = "set" if self.api_key else "unset"
        return f"LlmEndpoint(base_url={self.base_url!r}, model={self.model!r}, api_key={key}, embedded={self.embedded})"

    __str__ = __repr__


def for_endpoint(settings: LlmSettings, endpoint: LlmEndpoint) -> LlmSettings:
    """Settings adjusted to the endpoint: the embedded model gets longer timeouts unless the user set their own."""
    if not endpoint.embedded:
        return settings
    defaults = LlmSettings()
    if settings.request_timeout_s == defaults.request_timeout_s:
        settings = replace(settings, request_timeout_s=EMBEDDED_REQUEST_TIMEOUT_S)
    if settings.task_deadline_s == defaults.task_deadline_s:
        settings = replace(settings, task_deadline_s=EMBEDDED_TASK_DEADLINE_S)
    return settings


def resolve_endpoint(settings: LlmSettings, environ: Mapping[str, str] | None = None) -> LlmEndpoint:
    """Settings first, then the environment, then the embedded model."""
    environ = os.environ if environ is None else environ
    base_url = settings.base_url or environ.get("OPENAI_BASE_URL") or None
    api_key = environ.get(settings.api_key_env) or None
    if base_url is None:
        return LlmEndpoint(None, settings.model or environ.get("METAGPT_LSP_MODEL") or EMBEDDED_MODEL, None, True)
    model = settings.model or environ.get("METAGPT_LSP_MODEL") or "gpt-4o-mini"
    return LlmEndpoint(base_url.rstrip("/"), model, api_key, False)
