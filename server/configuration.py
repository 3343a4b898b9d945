"""Settings arrive three ways — ``initializationOptions``, ``workspace/configuration`` and
``workspace/didChangeConfiguration`` — and all of them end here, parsed into the typed tree and applied."""

from __future__ import annotations

import logging
from typing import Any

from lsprotocol import types

from metagpt_lsp.agents.syntax import PositionEncoding

from . import log_forwarding, text_sync
from .diagnostics import client_pulls_diagnostics
from .language_server import MetagptLanguageServer
from .settings import SECTION, parse_settings

log = logging.getLogger(__name__)


def initialize(server: MetagptLanguageServer, params: types.InitializeParams) -> None:
    server.pull_diagnostics = client_pulls_diagnostics(params.capabilities)
    server.documents.encoding = PositionEncoding.from_lsp(server.workspace.position_encoding)
    server.settings, server.pending_problems = parse_settings(params.initialization_options, server.settings)
    apply(server)
    log.info("initialized for %s: %s diagnostics, %s positions",
             params.client_info.name if params.client_info else "an unnamed client",
             "pull" if server.pull_diagnostics else "push", server.documents.encoding.value)


async def initialized(server: MetagptLanguageServer, _params: types.InitializedParams) -> None:
    server.editor_log.connected = True
    server.report_settings_problems(server.pending_problems)
    server.pending_problems = []
    await pull_configuration(server)


async def did_change_configuration(server: MetagptLanguageServer,
                                   params: types.DidChangeConfigurationParams) -> None:
    settings = params.settings
    if isinstance(settings, dict) and isinstance(settings.get(SECTION), dict):
        update(server, settings, "workspace/didChangeConfiguration")
    else:
        await pull_configuration(server)


async def pull_configuration(server: MetagptLanguageServer) -> None:
    """Ask the client for our section when it supports ``workspace/configuration``."""
    workspace = server.client_capabilities.workspace
    if not (workspace and workspace.configuration):
        return
    try:
        values = await server.workspace_configuration_async(
            types.ConfigurationParams(items=[types.ConfigurationItem(section=SECTION)]))
    except Exception as error:  # noqa: BLE001 - a client that fails this request keeps the settings we have
        log.warning("workspace/configuration failed (%s); keeping the current settings", error)
        return
    if values and values[0] is not None:
        update(server, values[0], "workspace/configuration")


def update(server: MetagptLanguageServer, raw: Any, origin: str) -> None:
    """Apply settings that arrived after ``initialize``; open documents are rechecked when syntax settings changed."""
    before = server.settings
    server.settings, problems = parse_settings(raw, server.settings)
    server.report_settings_problems(problems)
    apply(server)
    if server.settings.syntax != before.syntax:
        text_sync.refresh_all(server)
    log.info("settings from %s applied", origin)


def apply(server: MetagptLanguageServer) -> None:
    log_forwarding.set_level(server.settings.log_level)
    server.documents.max_parse_bytes = server.settings.syntax.max_parse_bytes
    team = server.settings.team
    server.team_host.configure(server.settings.llm, team.graph, team.fix_candidates, team.run_doctests)
