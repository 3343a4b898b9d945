"""The ``metagpt-lsp team`` command: print the team's cooperation graph — agents, weighted edges, round bounds.

The graph printed is the one the server would use: the default, or the default with the ``team.graph`` override of
a settings file applied (``--settings FILE.json``, editor-style JSON: bare, under ``metagptLsp``, or VS Code's flat
``"metagptLsp.team.graph"`` keys), so a user sees the effect of an override before relying on it. An override the
graph refuses is not printed: every problem is listed and the command exits 2 (the server would keep the default
graph and say the same). ``--mermaid`` prints a Mermaid flowchart instead of text.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any, TextIO

from metagpt_lsp.agents.team import CooperationGraph, GraphError, graph_from_settings

from ..settings import SECTION, parse_settings

USAGE_ERROR = 2


def run_team(settings_path: str | None = None, mermaid: bool = False, out: TextIO | None = None,
             err: TextIO | None = None) -> int:
    """Print the graph (text or Mermaid) to ``out``; problems go to ``err``. Returns the exit status."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        graph, origin = graph_for(settings_path, err)
    except GraphError as error:
        print(f"metagpt-lsp team: the cooperation graph override (team.graph) in {settings_path} is invalid; the "
              "server would use the default graph instead:", file=err)
        for problem in error.problems:
            print(f"  - {problem}", file=err)
        return USAGE_ERROR
    except (OSError, ValueError) as error:
        print(f"metagpt-lsp team: cannot read settings from {settings_path}: {error}", file=err)
        return USAGE_ERROR
    if mermaid:
        print(graph.render_mermaid(), file=out)
    else:
        print(f"{graph.render_text()}\n({origin})", file=out)
    return 0


def graph_for(settings_path: str | None, err: TextIO) -> tuple[CooperationGraph, str]:
    """The graph the server would build from the settings file, and where it came from, in words.

    ``GraphError`` when the override is invalid; ``OSError``/``ValueError`` when the file cannot be read as JSON.
    Problems with other settings are noted on ``err`` and do not change the graph.
    """
    if settings_path is None:
        return CooperationGraph.default(), "the default graph; override it with the team.graph setting"
    with open(settings_path, encoding="utf-8") as handle:
        raw = _nested(json.load(handle))
    if not isinstance(raw, Mapping):
        raise ValueError(f"expected a JSON object of settings, got {type(raw).__name__}")
    _settings, problems = parse_settings(raw)
    for problem in problems:
        if problem.path != "team.graph":
            print(f"note: {problem}", file=err)
    override = _team_graph(raw)
    if override is None:
        return CooperationGraph.default(), f"the default graph: {settings_path} sets no team.graph"
    return graph_from_settings(override), f"the default graph with the team.graph override of {settings_path}"


def _nested(raw: Any) -> Any:
    """VS Code's flat ``"metagptLsp.team.graph"`` keys folded into ``{"metagptLsp": {"team": {"graph": ...}}}``;
    keys of other tools are left out."""
    if not isinstance(raw, Mapping) or not any(key.startswith(f"{SECTION}.") for key in raw):
        return raw
    section: dict[str, Any] = dict(raw.get(SECTION) or {}) if isinstance(raw.get(SECTION), Mapping) else {}
    for key, value in raw.items():
        if not key.startswith(f"{SECTION}."):
            continue
        *parents, leaf = key.split(".")[1:]
        branch = section
        for name in parents:
            if not isinstance(branch.get(name), dict):
                branch[name] = {}
            branch = branch[name]
        branch[leaf] = value
    return {SECTION: section}


def _team_graph(raw: Any) -> object | None:
    """The raw ``team.graph`` value as written (so its problems can be listed one by one), None when absent."""
    if isinstance(raw, Mapping) and isinstance(raw.get(SECTION), Mapping):
        raw = raw[SECTION]
    team = raw.get("team") if isinstance(raw, Mapping) else None
    return team.get("graph") if isinstance(team, Mapping) else None
