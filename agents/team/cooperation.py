"""The cooperation graph of the team: the seed's G=(V,E) with edge weights w(e_ij), declared here and nowhere else.

Nodes are the agents. A directed edge i -> j says that i sends j the listed message kinds, and its weight
w(e_ij) in (0, 1] says how much what i sends counts at j: cooperation(v_i, v_j) = w(e_ij). What runs today:

- allocation: ``route(sender, kind)`` names the agents that receive a message; the broker delivers by it and by
  nothing else. The coordinator sends every subtask (coordinator -> diagnosis / generation / review), and review
  itself asks diagnosis to challenge its findings (review -> diagnosis, ``subtask.challenge``).
- integration: ``merge_by_weight(outputs)`` combines the votes of the agents that handled one thing by the weights
  of the edges they travelled. A review finding: review's proposal (review -> diagnosis) and diagnosis's answer to
  the challenge (diagnosis -> review) give its confidence, and so its severity (:mod:`cross_examination`). A fix:
  generation's proposal (generation -> review, 0.6) against review's verdict (review -> generation, 0.9), so a
  rejection sends the patch back for another round. These two edges, and diagnosis -> generation, weigh votes
  the coordinator relays: no message travels them directly.
- loops: every cycle of work edges has a round bound. The broker refuses a message that would take an edge on a
  cycle past its bound (``round_limit``): review -> diagnosis carries at most ``DEFAULT_CHALLENGE_ROUNDS``
  challenges per task. The coordinator runs at most ``max_rounds("generation", "review")`` propose/verify rounds.

Replies (``reply``/``error``) answer a request and start no work, so edges that carry only replies never make a
cycle; their weight is what the reply's vote counts at the receiver. ``graph_settings.graph_from_settings``
overrides the default from a plain settings dict; ``render_text`` and ``render_mermaid`` show the graph and the
flows that run over it (``FLOWS``).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

from ..broker.messages import REPLY_KINDS, MessageKind

_KNOWN_KINDS = frozenset(MessageKind)
AGENTS = ("coordinator", "diagnosis", "generation", "review")
DEFAULT_MAX_ROUNDS = 3
DEFAULT_CHALLENGE_ROUNDS = 20
"""How many challenges review may send diagnosis per task: one per reviewed unit with findings (review.maxUnits)."""


class GraphError(ValueError):
    """The graph (or the settings that override it) is not valid; ``problems`` lists every reason."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("invalid cooperation graph:\n" + "\n".join(f"  - {p}" for p in self.problems))


@dataclass(frozen=True)
class Edge:
    """i -> j: ``source`` sends ``target`` the ``kinds``; what it sends counts ``weight`` at the target."""

    source: str
    target: str
    weight: float
    kinds: tuple[MessageKind, ...]

    @property
    def carries_work(self) -> bool:
        return any(kind not in REPLY_KINDS for kind in self.kinds)


@dataclass(frozen=True)
class RoundBound:
    """Any cycle among ``agents`` goes round at most ``max_rounds`` times per task."""

    agents: frozenset[str]
    max_rounds: int


class Verdict(StrEnum):
    PROPOSE = "propose"
    REJECT = "reject"


V = TypeVar("V")
"""The type of the values being merged (a ``Finding``, a ``Proposal``...)."""


@dataclass(frozen=True)
class Output(Generic[V]):
    """What ``agent`` said about ``key`` (a finding's anchor, "patch", ...), travelling along ``agent -> to``."""

    agent: str
    key: Hashable
    value: V
    verdict: Verdict = Verdict.PROPOSE
    to: str = "coordinator"


@dataclass(frozen=True)
class Merged(Generic[V]):
    """The integrated answer for one key: the winning side's strongest value and its combined weight."""

    key: Hashable
    verdict: Verdict
    value: V
    weight: float
    sources: tuple[str, ...]
    overruled: tuple[Output[V], ...] = ()


def _w(source: str, target: str, weight: float, *kinds: MessageKind) -> Edge:
    return Edge(source, target, weight, kinds)


K = MessageKind
DEFAULT_EDGES = (
    _w("coordinator", "diagnosis", 1.0, K.SUBTASK_EXPLAIN),
    _w("coordinator", "generation", 1.0, K.SUBTASK_PROPOSE_FIX, K.SUBTASK_GENERATE),
    _w("coordinator", "review", 1.0, K.SUBTASK_VERIFY, K.SUBTASK_REVIEW_UNITS, K.SUBTASK_SEARCH_REPAIR),
    _w("diagnosis", "generation", 0.7, K.SUBTASK_PROPOSE_FIX),
    _w("generation", "review", 0.6, K.SUBTASK_VERIFY, K.REPLY, K.ERROR),
    _w("review", "generation", 0.9, K.REJECT, K.SUBTASK_PROPOSE_FIX),
    _w("review", "diagnosis", 0.6, K.SUBTASK_CHALLENGE),
    _w("diagnosis", "review", 0.7, K.REPLY, K.ERROR),
    _w("diagnosis", "coordinator", 0.7, K.REPLY, K.ERROR),
    _w("generation", "coordinator", 0.6, K.REPLY, K.ERROR),
    _w("review", "coordinator", 0.9, K.REPLY, K.ERROR),
)
DEFAULT_ROUND_BOUNDS = (RoundBound(frozenset({"generation", "review"}), DEFAULT_MAX_ROUNDS),
                        RoundBound(frozenset({"diagnosis", "generation", "review"}), DEFAULT_CHALLENGE_ROUNDS))

FLOWS = (
    ("review", "coordinator -> review: subtask.review_units, one per changed unit; review -> diagnosis: "
               "subtask.challenge, one per unit with findings; when code may run, the claimed input and the unit's "
               "own >>> examples run in the sandbox (a failing example is a finding on that evidence alone, placed "
               "on the line a one-token repair changes, else — review -> generation: subtask.propose_fix, once per "
               "unit — the line a repair that passes every example changes); "
               "coordinator: confidence = merge of review's and diagnosis's votes by their edge weights, "
               "severity by evidence and team.review.* thresholds"),
    ("explain and fix", "coordinator -> diagnosis: subtask.explain; then per round, coordinator -> generation: "
                        "subtask.propose_fix and coordinator -> review: subtask.verify; generation's proposal and "
                        "review's verdict merged by weight; when the first round's candidates failed the unit's own "
                        "examples, coordinator -> review: subtask.search_repair (one-token repairs run against them "
                        "in the sandbox); a rejection starts the next round"),
    ("generate", "per round, coordinator -> generation: subtask.generate, coordinator -> review: subtask.verify"),
)
"""The message flows that run over the graph, per request (what ``metagpt-lsp team`` and ``metagpt.team`` show)."""


class CooperationGraph:
    """A validated, immutable cooperation graph. Construction raises ``GraphError`` listing every problem."""

    def __init__(
        self,
        edges: Iterable[Edge] = DEFAULT_EDGES,
        round_bounds: Iterable[RoundBound] = DEFAULT_ROUND_BOUNDS,
        agents: Iterable[str] = AGENTS,
    ) -> None:
        self.agents: tuple[str, ...] = tuple(agents)
        self.edges: tuple[Edge, ...] = tuple(edges)
        self.round_bounds: tuple[RoundBound, ...] = tuple(round_bounds)
        self._by_pair = {(e.source, e.target): e for e in self.edges}
        self._work = {a: tuple(e.target for e in self.edges if e.source == a and e.carries_work) for a in self.agents}
        problems = self._problems()
        if problems:
            raise GraphError(problems)
        self._routes: dict[tuple[str, MessageKind], tuple[str, ...]] = {}
        for edge in sorted(self.edges, key=lambda e: -e.weight):
            for kind in edge.kinds:
                self._routes[(edge.source, kind)] = self._routes.get((edge.source, kind), ()) + (edge.target,)
        self._limits = {pair: self._limit_of(*pair) for pair in self._by_pair}

    @classmethod
    def default(cls) -> CooperationGraph:
        return cls()

    # -- validation ------------------------------------------------------------------------------------------

    def _problems(self) -> list[str]:
        known = set(self.agents)
        names = ", ".join(self.agents)
        problems: list[str] = []
        seen: set[tuple[str, str]] = set()
        for e in self.edges:
            label = f"edge {e.source} -> {e.target}"
            for end in (e.source, e.target):
                if end not in known:
                    problems.append(f"{label}: unknown agent {end!r} (agents: {names})")
            if e.source == e.target:
                problems.append(f"{label}: an agent cannot send to itself")
            if (e.source, e.target) in seen:
                problems.append(f"{label} is declared twice")
            seen.add((e.source, e.target))
            if isinstance(e.weight, bool) or not isinstance(e.weight, (int, float)) or math.isnan(e.weight):
                problems.append(f"{label}: weight must be a number in (0, 1], got {e.weight!r}")
            elif not 0.0 < e.weight <= 1.0:
                problems.append(f"{label}: weight {e.weight} is outside (0, 1]")
            if not e.kinds:
                problems.append(f"{label} carries no message kinds")
            for kind in e.kinds:
                if kind not in _KNOWN_KINDS:
                    problems.append(f"{label}: unknown message kind {kind!r} (known: {', '.join(MessageKind)})")
        touched = {e.source for e in self.edges} | {e.target for e in self.edges}
        for agent in self.agents:
            if agent not in touched:
                problems.append(f"agent {agent!r} has no edge: nothing reaches it and it reaches no one")
        for bound in self.round_bounds:
            if isinstance(bound.max_rounds, bool) or not isinstance(bound.max_rounds, int) or bound.max_rounds < 1:
                problems.append(f"round bound on {_names(bound.agents)}: must be a whole number >= 1, "
                                f"got {bound.max_rounds!r}")
            for agent in sorted(bound.agents - known):
                problems.append(f"round bound on {_names(bound.agents)}: unknown agent {agent!r} (agents: {names})")
        if problems:
            return problems
        for cycle in self.find_cycles(self._work):
            if not any(set(cycle) <= bound.agents for bound in self.round_bounds):
                path = " -> ".join(cycle + (cycle[0],))
                problems.append(f"cycle {path} has no round bound: set maxRounds to bound its retries")
        return problems

    @staticmethod
    def find_cycles(successors: Mapping[str, Iterable[str]]) -> list[tuple[str, ...]]:
        """Every elementary cycle, each once, starting at its smallest agent name (graphs here are tiny)."""
        cycles: list[tuple[str, ...]] = []

        def walk(start: str, node: str, path: tuple[str, ...]) -> None:
            for nxt in successors.get(node, ()):
                if nxt == start:
                    cycles.append(path)
                elif nxt > start and nxt not in path:
                    walk(start, nxt, path + (nxt,))

        for start in sorted(successors):
            walk(start, start, (start,))
        return cycles

    def _limit_of(self, source: str, target: str) -> int | None:
        on_cycles = [c for c in self.find_cycles(self._work) if _has_step(c, source, target)]
        limits = [b.max_rounds for c in on_cycles for b in self.round_bounds if set(c) <= b.agents]
        return min(limits) if limits else None

    # -- use -------------------------------------------------------------------------------------------------

    def route(self, sender: str, kind: MessageKind | str) -> tuple[str, ...]:
        """The agents that receive ``kind`` from ``sender``, strongest edge first; () when no edge carries it."""
        return self._routes.get((sender, MessageKind(kind)), ())

    def weight(self, source: str, target: str) -> float:
        """w(e_ij) of the edge ``source -> target``; ``LookupError`` when there is no such edge."""
        edge = self._by_pair.get((source, target))
        if edge is None:
            raise LookupError(f"the cooperation graph has no edge {source} -> {target}")
        return edge.weight

    def round_limit(self, source: str, target: str) -> int | None:
        """How many messages the edge may carry per task when it lies on a cycle; None when it lies on none."""
        return self._limits.get((source, target))

    def max_rounds(self, a: str, b: str) -> int | None:
        """The round bound of the loop between ``a`` and ``b`` (e.g. generation and review), if they loop."""
        limits = [x for x in (self.round_limit(a, b), self.round_limit(b, a)) if x is not None]
        return min(limits) if limits else None

    def merge_by_weight(self, outputs: Iterable[Output[V]]) -> tuple[Merged[V], ...]:
        """Integrate outputs per key by the weights of the edges they travelled along.

        Outputs on the same key reinforce each other: a side's weight is 1 - prod(1 - w) over its agents (each
        agent counted once, at its strongest). Rejections win when their weight is at least the proposals' (a tie
        is resolved for safety); the winning side's strongest output gives the value. Keys keep first-seen order.
        """
        by_key: dict[Hashable, list[tuple[float, Output[V]]]] = {}
        for out in outputs:
            by_key.setdefault(out.key, []).append((self.weight(out.agent, out.to), out))
        merged: list[Merged[V]] = []
        for key, weighted in by_key.items():
            sides = {v: [(w, o) for w, o in weighted if o.verdict is v] for v in Verdict}
            scores = {v: _combined(side) for v, side in sides.items()}
            winner = Verdict.REJECT if sides[Verdict.REJECT] and scores[Verdict.REJECT] >= scores[Verdict.PROPOSE] \
                else Verdict.PROPOSE
            side = sorted(sides[winner], key=lambda wo: -wo[0])
            sources = tuple(dict.fromkeys(o.agent for _, o in side))
            loser = Verdict.PROPOSE if winner is Verdict.REJECT else Verdict.REJECT
            merged.append(Merged(key, winner, side[0][1].value, scores[winner], sources,
                                 tuple(o for _, o in sides[loser])))
        return tuple(merged)

    # -- rendering -------------------------------------------------------------------------------------------

    def render_text(self) -> str:
        """Agents, edges with weights and kinds, and round bounds, as aligned plain text."""
        lines = [f"cooperation graph: {len(self.agents)} agents, {len(self.edges)} edges, weights w(e_ij) in (0, 1]",
                 "agents: " + ", ".join(self.agents), "edges:"]
        width = max(len(f"{e.source} -> {e.target}") for e in self.edges)
        for e in self.edges:
            pair = f"{e.source} -> {e.target}".ljust(width)
            lines.append(f"  {pair}  {e.weight:.2f}  {', '.join(map(str, e.kinds))}")
        lines.append("round bounds:")
        for b in self.round_bounds:
            lines.append(f"  {_names(b.agents)}: at most {b.max_rounds} rounds per task")
        lines.append("flows:")
        lines.extend(f"  {request}: {flow}" for request, flow in FLOWS)
        return "\n".join(lines)

    def render_mermaid(self) -> str:
        """A Mermaid flowchart: ``review -->|0.9 reject| generation``; replies drawn dotted."""
        lines = ["graph TD"]
        for e in self.edges:
            arrow = "-->" if e.carries_work else "-.->"
            lines.append(f"  {e.source} {arrow}|{e.weight:g} {', '.join(map(str, e.kinds))}| {e.target}")
        for b in self.round_bounds:
            lines.append(f"  %% {_names(b.agents)}: at most {b.max_rounds} rounds per task")
        return "\n".join(lines)


def _combined(side: list[tuple[float, Output[V]]]) -> float:
    strongest: dict[str, float] = {}
    for w, o in side:
        strongest[o.agent] = max(w, strongest.get(o.agent, 0.0))
    return 1.0 - math.prod(1.0 - w for w in strongest.values()) if strongest else 0.0


def _has_step(cycle: tuple[str, ...], source: str, target: str) -> bool:
    return any(cycle[i] == source and cycle[(i + 1) % len(cycle)] == target for i in range(len(cycle)))


def _names(agents: Iterable[str]) -> str:
    return " <-> ".join(sorted(agents))
