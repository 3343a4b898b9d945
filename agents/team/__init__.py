"""The agent team: the coordinator (``Team``) that splits a request into subtasks for the diagnosis, generation and
review agents over the broker, the cooperation graph that weighs their votes, the payloads they exchange, their
prompts and the context those carry, where generation makes sense, and the review cache and git changes that keep
review to what changed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy_exports import lazy_exports

_EXPORTS = {
    "Team": ".coordinator",
    "CooperationGraph": ".cooperation",
    "GraphError": ".cooperation",
    "Finding": ".payloads",
    "FixRequest": ".payloads",
    "GenerateRequest": ".payloads",
    "ReviewRequest": ".payloads",
    "TeamResult": ".payloads",
    "UnitReview": ".payloads",
    "DiagnosisAgent": ".diagnosis_agent",
    "GenerationAgent": ".generation_agent",
    "ReviewAgent": ".review_agent",
    "generation_site": ".generation_sites",
    "ReviewCache": ".review_cache",
    "changed_units": ".git_changes",
    "every_unit": ".git_changes",
    "PROMPT_VERSION": ".prompts",
}

if TYPE_CHECKING:
    from .coordinator import Team
    from .cooperation import CooperationGraph, GraphError
    from .payloads import Finding, FixRequest, GenerateRequest, ReviewRequest, TeamResult, UnitReview
    from .diagnosis_agent import DiagnosisAgent
    from .generation_agent import GenerationAgent
    from .review_agent import ReviewAgent
    from .generation_sites import generation_site
    from .review_cache import ReviewCache
    from .git_changes import changed_units, every_unit
    from .prompts import PROMPT_VERSION

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
