"""The agent team: the coordinator (``Team``) that splits a request into subtasks for the diagnosis, generation and
review agents over the broker, the cooperation graph that weighs their votes, the payloads they exchange, their
prompts and the context those carry, the cross-examination that turns a finding's votes and evidence into its
severity, where generation makes sense, and the review cache and git changes that keep review to what changed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy_exports import lazy_exports

_EXPORTS = {
    "Team": ".coordinator",
    "CooperationGraph": ".cooperation",
    "GraphError": ".cooperation",
    "graph_from_settings": ".graph_settings",
    "Finding": ".payloads",
    "FixRequest": ".payloads",
    "GenerateRequest": ".payloads",
    "ReviewRequest": ".payloads",
    "ReviewPolicy": ".payloads",
    "Claim": ".payloads",
    "evidence_data": ".cross_examination",
    "judge": ".cross_examination",
    "TeamResult": ".payloads",
    "UnitReview": ".payloads",
    "DiagnosisAgent": ".diagnosis_agent",
    "GenerationAgent": ".generation_agent",
    "ReviewAgent": ".review_agent",
    "generation_site": ".generation_sites",
    "ReviewCache": ".review_cache",
    "changed_units": ".git_changes",
    "every_unit": ".git_changes",
    "text_at": ".git_changes",
    "units_changed_from": ".git_changes",
    "PROMPT_VERSION": ".prompts",
}

if TYPE_CHECKING:
    from .cooperation import CooperationGraph as CooperationGraph
    from .cooperation import GraphError as GraphError
    from .coordinator import Team as Team
    from .cross_examination import evidence_data as evidence_data
    from .cross_examination import judge as judge
    from .diagnosis_agent import DiagnosisAgent as DiagnosisAgent
    from .generation_agent import GenerationAgent as GenerationAgent
    from .generation_sites import generation_site as generation_site
    from .git_changes import changed_units as changed_units
    from .git_changes import every_unit as every_unit
    from .git_changes import text_at as text_at
    from .git_changes import units_changed_from as units_changed_from
    from .graph_settings import graph_from_settings as graph_from_settings
    from .payloads import Claim as Claim
    from .payloads import Finding as Finding
    from .payloads import FixRequest as FixRequest
    from .payloads import GenerateRequest as GenerateRequest
    from .payloads import ReviewPolicy as ReviewPolicy
    from .payloads import ReviewRequest as ReviewRequest
    from .payloads import TeamResult as TeamResult
    from .payloads import UnitReview as UnitReview
    from .prompts import PROMPT_VERSION as PROMPT_VERSION
    from .review_agent import ReviewAgent as ReviewAgent
    from .review_cache import ReviewCache as ReviewCache

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
