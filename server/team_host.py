"""The agent team as the server holds it: built on first need from the settings, rebuilt when they change.

With no endpoint configured the team talks to the embedded local model, which starts lazily on the first request
(the user is told once, clearly, when it is not installed). Nothing here is created at server start: ``initialize``
stays fast and openai/llama.cpp load only when an LLM is first needed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from metagpt_lsp.agents.llm import LlmEndpoint, LlmSettings, for_endpoint, resolve_endpoint

log = logging.getLogger(__name__)


class TeamHost:
    """Owns the ``Team`` (and its LLM client, review cache and embedded model) for one server."""

    def __init__(self, tell_user: Callable[[str], None]) -> None:
        self._tell_user = tell_user
        self._team: Any = None
        self._embedded: Any = None
        self._llm_settings: LlmSettings | None = None
        self._graph_settings: Any = None
        self._fix_options: tuple[int, bool] = (1, False)
        self.review_cache: Any = None
        self.endpoint: LlmEndpoint | None = None

    def configure(self, llm: LlmSettings, graph: Any = None, fix_candidates: int = 1,
                  run_doctests: bool = False) -> None:
        """Remember new settings; the team is rebuilt on its next use if they changed."""
        fix_options = (fix_candidates, run_doctests)
        if llm != self._llm_settings or graph != self._graph_settings or fix_options != self._fix_options:
            self._llm_settings, self._graph_settings, self._fix_options = llm, graph, fix_options
            self._retired = self._team
            self._team = None

    @property
    def active(self) -> Any:
        """The team if one has been built (for status and trace), without building one."""
        return self._team

    async def team(self) -> Any:
        """The team for the current settings, built on first use."""
        if self._team is None:
            await self._retire()
            self._team = self._build()
        return self._team

    def _build(self) -> Any:
        from metagpt_lsp.agents.llm import LlmClient
        from metagpt_lsp.agents.team import ReviewCache, Team, graph_from_settings

        self.endpoint = resolve_endpoint(self._llm_settings or LlmSettings())
        settings = for_endpoint(self._llm_settings or LlmSettings(), self.endpoint)
        provider = None
        if self.endpoint.embedded:
            provider = self._embedded_provider()
        graph = graph_from_settings(self._graph_settings) if self._graph_settings else None
        if self.review_cache is None:
            self.review_cache = ReviewCache()
        llm = LlmClient(settings, self.endpoint, base_url_provider=provider)
        log.info("agent team ready: %s", self.endpoint)
        fix_candidates, run_doctests = self._fix_options
        return Team(llm, graph, self.review_cache, deadline_s=settings.task_deadline_s, fix_candidates=fix_candidates,
                    run_doctests=run_doctests)

    def _embedded_provider(self) -> Callable[[], Any]:
        from metagpt_lsp.agents.llm.embedded import EmbeddedModel

        if self._embedded is None:
            self._embedded = EmbeddedModel()
        notice = self._embedded.unavailable_notice()
        if notice:
            self._tell_user(notice)
        return self._embedded.base_url

    async def _retire(self) -> None:
        retired = getattr(self, "_retired", None)
        self._retired = None
        if retired is not None:
            await retired.close()
            await retired.llm.aclose()

    async def close(self) -> None:
        await self._retire()
        if self._team is not None:
            await self._team.close()
            await self._team.llm.aclose()
            self._team = None
        if self._embedded is not None:
            await self._embedded.stop()
        if self.review_cache is not None:
            self.review_cache.close()
