"""Overriding the cooperation graph from settings: a plain dict in, edges and round bounds out, every error explained.

The settings look like ``{"edges": [{"from": "review", "to": "generation", "weight": 0.9, "kinds": ["reject"]}],
"maxRounds": 3}`` (camelCase, as the editor sends them). An edge entry names an existing edge to change its weight
and/or kinds, a new edge (then both are needed), or ``"remove": true`` to drop one. ``maxRounds`` bounds every cycle.
All problems are collected and raised together as one ``GraphError``, so a user fixes them in one go; the caller
(the server) keeps the default graph and tells the user what was wrong. ``graph_from_settings`` builds the graph;
the graph itself (``cooperation.py``) knows nothing of settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from ..broker.messages import MessageKind
from .cooperation import CooperationGraph, Edge, GraphError, RoundBound

_TOP_KEYS = ("edges", "maxRounds")
_EDGE_KEYS = ("from", "to", "weight", "kinds", "remove")


def graph_from_settings(settings: Mapping[str, object] | None) -> CooperationGraph:
    """The default graph overridden by ``settings`` (``{"edges": [...], "maxRounds": 3}``); ``GraphError`` lists
    every problem."""
    edges, bounds = apply_settings(settings, CooperationGraph.default())
    return CooperationGraph(edges, bounds)


def apply_settings(
    settings: Mapping[str, object] | None, base: CooperationGraph
) -> tuple[tuple[Edge, ...], tuple[RoundBound, ...]]:
    """The edges and round bounds of ``base`` with ``settings`` applied; ``GraphError`` lists what is wrong."""
    if settings is None:
        return base.edges, base.round_bounds
    if not isinstance(settings, Mapping):
        raise GraphError([f"cooperation settings must be an object, got {type(settings).__name__}"])
    problems = [f"unknown key {key!r} in cooperation settings (known: {', '.join(_TOP_KEYS)})"
                for key in settings if key not in _TOP_KEYS]
    edges = {(e.source, e.target): e for e in base.edges}
    entries = settings.get("edges", [])
    if not isinstance(entries, (list, tuple)):
        problems.append(f"'edges' must be a list of edge objects, got {type(entries).__name__}")
        entries = []
    for index, entry in enumerate(entries):
        _apply_edge(f"edges[{index}]", entry, edges, set(base.agents), problems)
    bounds = base.round_bounds
    if "maxRounds" in settings:
        rounds = settings["maxRounds"]
        if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
            problems.append(f"'maxRounds' must be a whole number >= 1, got {rounds!r}")
        else:
            work = {a: [t for (s, t), e in edges.items() if s == a and e.carries_work] for a in base.agents}
            cycles = {frozenset(c) for c in base.find_cycles(work)}
            bounds = tuple(RoundBound(agents, rounds) for agents in {b.agents for b in bounds} | cycles)
    if problems:
        raise GraphError(problems)
    return tuple(edges.values()), tuple(sorted(bounds, key=lambda b: sorted(b.agents)))


def _apply_edge(where: str, entry: object, edges: dict[tuple[str, str], Edge], agents: set[str],
                problems: list[str]) -> None:
    if not isinstance(entry, Mapping):
        problems.append(f"{where}: must be an object like {{\"from\": ..., \"to\": ..., \"weight\": ...}}")
        return
    problems.extend(f"{where}: unknown key {key!r} (known: {', '.join(_EDGE_KEYS)})"
                    for key in entry if key not in _EDGE_KEYS)
    source, target = entry.get("from"), entry.get("to")
    if not isinstance(source, str) or not isinstance(target, str):
        problems.append(f"{where}: 'from' and 'to' must name agents, got {source!r} and {target!r}")
        return
    label = f"{where} ({source} -> {target})"
    unknown = [a for a in (source, target) if a not in agents]
    if unknown:
        problems.append(f"{label}: unknown agent {unknown[0]!r} (agents: {', '.join(sorted(agents))})")
        return
    existing = edges.get((source, target))
    if entry.get("remove") is True:
        if existing is None:
            problems.append(f"{label}: cannot remove an edge that does not exist")
        else:
            del edges[(source, target)]
        return
    kinds = _kinds(label, entry.get("kinds"), problems) if "kinds" in entry else None
    weight = entry.get("weight")
    if existing is None:
        if weight is None or kinds is None:
            problems.append(f"{label}: a new edge needs both 'weight' and 'kinds'")
            return
        edges[(source, target)] = Edge(source, target, weight, kinds)  # the graph checks the weight
        return
    edges[(source, target)] = replace(existing, weight=existing.weight if weight is None else weight,
                                      kinds=existing.kinds if kinds is None else kinds)


def _kinds(label: str, raw: object, problems: list[str]) -> tuple[MessageKind, ...] | None:
    if not isinstance(raw, (list, tuple)) or not all(isinstance(k, str) for k in raw):
        problems.append(f"{label}: 'kinds' must be a list of message kinds, got {raw!r}")
        return None
    known = {k.value for k in MessageKind}
    bad = [k for k in raw if k not in known]
    if bad:
        problems.append(f"{label}: unknown message kind {bad[0]!r} (known: {', '.join(sorted(known))})")
        return None
    return tuple(MessageKind(k) for k in raw)
