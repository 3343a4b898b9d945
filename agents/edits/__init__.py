"""Edits: a model's code fitted to its target and checked before any editor sees it (parses, stays in its target,
keeps what the user's code defines), findings anchored by the text they quote, a function's own examples run, and
the sandbox that runs untrusted code (a script, or one function called with literal inputs).
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
from .sandbox import CallOutcome, SandboxRun, call_function, call_functions, run_python

__all__ = [
    "ByteEdit",
    "CallOutcome",
    "Patch",
    "PatchVerdict",
    "SandboxRun",
    "broken_invariant",
    "call_function",
    "call_functions",
    "fit_replacement",
    "locate_snippet",
    "minimal_edits",
    "run_examples",
    "run_python",
    "verify_patch",
    "without_repeated_context",
]
