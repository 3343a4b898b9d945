"""LLM access: one client for any OpenAI-compatible endpoint (retries, timeouts, structured replies, a reply cache,
token accounting), the settings that choose the endpoint, and the errors users are told. ``embedded/`` runs the
local model when no endpoint is configured.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy_exports import lazy_exports

_EXPORTS = {
    "LlmClient": ".client",
    "LlmReply": ".client",
    "LlmBadReply": ".errors",
    "LlmError": ".errors",
    "LlmRateLimited": ".errors",
    "LlmRejected": ".errors",
    "LlmTimeout": ".errors",
    "LlmUnavailable": ".errors",
    "EMBEDDED_MODEL": ".settings",
    "LlmEndpoint": ".settings",
    "LlmSettings": ".settings",
    "for_endpoint": ".settings",
    "resolve_endpoint": ".settings",
    "TokenUsage": ".usage",
    "UsageLedger": ".usage",
    "extract_code_block": ".code_blocks",
    "fenced_blocks": ".code_blocks",
}

if TYPE_CHECKING:
    from .client import LlmClient, LlmReply
    from .errors import LlmBadReply, LlmError, LlmRateLimited, LlmRejected, LlmTimeout, LlmUnavailable
    from .settings import EMBEDDED_MODEL, LlmEndpoint, LlmSettings, for_endpoint, resolve_endpoint
    from .usage import TokenUsage, UsageLedger
    from .code_blocks import extract_code_block, fenced_blocks

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
