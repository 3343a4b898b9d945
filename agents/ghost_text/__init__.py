"""Ghost text: fill-in-the-middle completion at the cursor as the user types — the window and signatures the model
sees, each code-model family's FIM template, when to ask and how much to show, the peers' filters, a syntax check,
and a cache with type-through so most keystrokes cost no model call. Knows nothing of LSP.
"""

from __future__ import annotations

from .context import CursorContext, WindowOptions, cursor_context
from .engine import GhostRequest, GhostResult, GhostText, GhostTextOptions
from .fim_templates import TEMPLATES, ContextFile, FimTemplate, template_for
from .offer_cache import OfferCache
from .offer_rules import Offer, Shape, discard_reason, over_closers, shape_at, should_request, trim
from .syntax_guard import adds_syntax_errors

__all__ = [
    "TEMPLATES",
    "ContextFile",
    "CursorContext",
    "FimTemplate",
    "GhostRequest",
    "GhostResult",
    "GhostText",
    "GhostTextOptions",
    "Offer",
    "OfferCache",
    "Shape",
    "WindowOptions",
    "adds_syntax_errors",
    "cursor_context",
    "discard_reason",
    "over_closers",
    "shape_at",
    "should_request",
    "template_for",
    "trim",
]
