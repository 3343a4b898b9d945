"""Edits: a model's code fitted to its target and checked before any editor sees it (parses, stays in its target,
keeps what the user's code defines), findings anchored by the text they quote, and a function's own examples run.
"""

from __future__ import annotations

from .anchoring import locate_snippet
from .examples import run_examples
from .invariants import broken_invariant
from .patches import (
    ByteEdit,
    Patch,
    PatchVerdict,
    fit_replacement,
    minimal_edits,
    verify_patch,
    without_repeated_context,
)

__all__ = [
    "ByteEdit",
    "Patch",
    "PatchVerdict",
    "broken_invariant",
    "fit_replacement",
    "locate_snippet",
    "minimal_edits",
    "run_examples",
    "verify_patch",
    "without_repeated_context",
]
