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
    from .client import LlmClient as LlmClient
    from .client import LlmReply as LlmReply
    from .code_blocks import extract_code_block as extract_code_block
    from .code_blocks import fenced_blocks as fenced_blocks
    from .errors import LlmBadReply as LlmBadReply
    from .errors import LlmError as LlmError
    from .errors import LlmRateLimited as LlmRateLimited
    from .errors import LlmRejected as LlmRejected
    from .errors import LlmTimeout as LlmTimeout
    from .errors import LlmUnavailable as LlmUnavailable
    from .settings import EMBEDDED_MODEL as EMBEDDED_MODEL
    from .settings import LlmEndpoint as LlmEndpoint
    from .settings import LlmSettings as LlmSettings
    from .settings import for_endpoint as for_endpoint
    from .settings import resolve_endpoint as resolve_endpoint
    from .usage import TokenUsage as TokenUsage
    from .usage import UsageLedger as UsageLedger

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
