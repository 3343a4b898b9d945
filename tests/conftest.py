"""Shared fixtures: real servers on 127.0.0.1 that tests talk to over real HTTP; and each test's layer as a marker.

The layers are folders: ``unit/`` (the library, no server), ``lsp/`` (the real server over a real transport, the
scripted LLM behind it), ``editors/`` (Neovim, VS Code, Emacs), ``embedded/`` (the real local model). Each test gets
its folder's marker, so ``pytest -m "not editors and not embedded"`` is the inner loop.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import settings

from metagpt_lsp.agents.llm.client import LlmClient
from metagpt_lsp.agents.llm.settings import LlmEndpoint, LlmSettings
from metagpt_lsp.testing.scripted_llm import ScriptedLlm

settings.register_profile("repeatable", derandomize=True, database=None)
settings.load_profile("repeatable")
"""Property tests draw the same examples on every run: a CI run is red for a change, never for a draw."""

_LAYERS = ("unit", "lsp", "editors", "embedded")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        parts = Path(item.path).relative_to(here).parts
        if parts and parts[0] in _LAYERS:
            item.add_marker(parts[0])


@pytest.fixture
async def scripted_llm():
    """A scripted OpenAI-compatible server (no rules: every completion answers "OK"); script it with ``.script()``."""
    async with ScriptedLlm() as server:
        yield server


@pytest.fixture
async def make_llm_client(scripted_llm):
    """Build LlmClients pointed at ``scripted_llm`` (fast backoff: retry tests take milliseconds); closed after."""
    clients: list[LlmClient] = []

    def make(api_key: str | None = "sk-scripted", **settings) -> LlmClient:
        options = {"request_timeout_s": 10.0, "connect_timeout_s": 2.0, **settings}
        endpoint = LlmEndpoint(scripted_llm.base_url, scripted_llm.model, api_key, embedded=False)
        clients.append(LlmClient(LlmSettings(**options), endpoint, backoff_base_s=0.01, backoff_max_s=0.05))
        return clients[-1]

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
async def llm_client(make_llm_client):
    """An LlmClient with default settings talking to the ``scripted_llm`` server."""
    return make_llm_client()


@pytest.fixture
def project(tmp_path):
    """A git repository in a temp dir with the sample module committed (tests may override it)."""
    from metagpt_lsp.testing.sample_module import STATS
    from metagpt_lsp.testing.scripted_editor import GitProject

    project = GitProject.create(tmp_path / "repo")
    project.commit({"stats.py": STATS})
    return project


@pytest.fixture
def review_cache(tmp_path):
    """Where the server under test keeps its review cache: never the user's."""
    return tmp_path / "review-cache.sqlite3"
