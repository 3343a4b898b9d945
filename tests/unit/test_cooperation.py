"""The cooperation graph G=(V,E) with weights w(e_ij): validation a user can act on, routing, merging by weight,
settings overrides and the text/Mermaid renderings that ``metagpt-lsp team`` prints."""

from __future__ import annotations

import pytest

from metagpt_lsp.agents.broker.messages import MessageKind as K
from metagpt_lsp.agents.team.cooperation import (
    AGENTS,
    DEFAULT_EDGES,
    CooperationGraph,
    Edge,
    GraphError,
    Output,
    RoundBound,
    Verdict,
)
from metagpt_lsp.agents.team.graph_settings import graph_from_settings


def problems_of(**kwargs) -> tuple[str, ...]:
    with pytest.raises(GraphError) as error:
        CooperationGraph(**kwargs)
    return error.value.problems


def settings_problems(settings) -> str:
    with pytest.raises(GraphError) as error:
        graph_from_settings(settings)
    return str(error.value)


def test_the_default_graph_is_valid_and_connects_every_agent():
    graph = CooperationGraph.default()
    assert graph.agents == AGENTS
    touched = {e.source for e in graph.edges} | {e.target for e in graph.edges}
    assert touched == set(AGENTS)
    assert graph.max_rounds("generation", "review") == 3


def test_an_agent_without_an_edge_is_rejected():
    edges = [e for e in DEFAULT_EDGES if "diagnosis" not in (e.source, e.target)]
    assert problems_of(edges=edges) == ("agent 'diagnosis' has no edge: nothing reaches it and it reaches no one",)


def test_a_cycle_without_a_round_bound_is_rejected():
    assert problems_of(round_bounds=()) == (
        "cycle diagnosis -> generation -> review -> diagnosis has no round bound: set maxRounds to bound its retries",
        "cycle generation -> review -> generation has no round bound: set maxRounds to bound its retries")


def test_reply_edges_do_not_count_as_cycles():
    # coordinator -> diagnosis -> coordinator is request and reply, not a loop of work: no bound needed for it
    graph = CooperationGraph.default()
    assert graph.round_limit("coordinator", "diagnosis") is None
    assert graph.round_limit("review", "generation") == 3


@pytest.mark.parametrize("weight, message", [
    (0.0, "edge review -> generation: weight 0.0 is outside (0, 1]"),
    (1.5, "edge review -> generation: weight 1.5 is outside (0, 1]"),
    (float("nan"), "edge review -> generation: weight must be a number in (0, 1], got nan"),
    ("high", "edge review -> generation: weight must be a number in (0, 1], got 'high'"),
])
def test_a_weight_outside_zero_to_one_is_rejected(weight, message):
    edges = [Edge(e.source, e.target, weight, e.kinds) if (e.source, e.target) == ("review", "generation") else e
             for e in DEFAULT_EDGES]
    assert problems_of(edges=edges) == (message,)


def test_unknown_agents_and_kinds_are_rejected_with_the_known_ones_listed():
    problems = problems_of(edges=DEFAULT_EDGES + (Edge("review", "tester", 0.5, (K.REJECT,)),
                                                  Edge("generation", "diagnosis", 0.5, ("blame",))))
    assert problems[0] == ("edge review -> tester: unknown agent 'tester' "
                           "(agents: coordinator, diagnosis, generation, review)")
    assert problems[1].startswith(
        "edge generation -> diagnosis: unknown message kind 'blame' (known: subtask.explain,")


def test_routing_follows_the_edges_strongest_first():
    graph = CooperationGraph.default()
    assert graph.route("coordinator", K.SUBTASK_EXPLAIN) == ("diagnosis",)
    assert graph.route("generation", "subtask.verify") == ("review",)
    assert graph.route("review", K.REJECT) == ("generation",)
    assert graph.route("diagnosis", K.SUBTASK_VERIFY) == ()
    widened = graph_from_settings(
        {"edges": [{"from": "coordinator", "to": "diagnosis", "kinds": ["subtask.explain", "subtask.review_units"],
                    "weight": 0.5}]})
    assert widened.route("coordinator", K.SUBTASK_REVIEW_UNITS) == ("review", "diagnosis")


def test_a_reviewers_rejection_outweighs_the_generators_proposal():
    graph = CooperationGraph.default()
    (patch,) = graph.merge_by_weight([
        Output("generation", "patch", "return x + 1", Verdict.PROPOSE, to="review"),
        Output("review", "patch", "the patch does not parse", Verdict.REJECT, to="generation"),
    ])
    assert (patch.verdict, patch.value, patch.weight, patch.sources) == (
        Verdict.REJECT, "the patch does not parse", 0.9, ("review",))
    assert [o.value for o in patch.overruled] == ["return x + 1"]


def test_lowering_the_reviewers_weight_in_settings_lets_the_proposal_stand():
    graph = graph_from_settings({"edges": [{"from": "review", "to": "generation", "weight": 0.3}]})
    (patch,) = graph.merge_by_weight([
        Output("generation", "patch", "return x + 1", to="review"),
        Output("review", "patch", "style nit", Verdict.REJECT, to="generation"),
    ])
    assert (patch.verdict, patch.value, patch.weight) == (Verdict.PROPOSE, "return x + 1", 0.6)


def test_overlapping_findings_merge_into_one_with_combined_weight():
    graph = CooperationGraph.default()
    merged = graph.merge_by_weight([
        Output("diagnosis", ("a.py", "x = foo()"), "foo is undefined"),
        Output("review", ("a.py", "x = foo()"), "undefined name foo"),
        Output("review", ("a.py", "return"), "missing value"),
        Output("review", ("a.py", "x = foo()"), "repeated by the same agent: counted once"),
    ])
    assert [m.key for m in merged] == [("a.py", "x = foo()"), ("a.py", "return")]
    overlap, single = merged
    assert overlap.value == "undefined name foo"  # the stronger edge (review -> coordinator, 0.9) gives the text
    assert overlap.sources == ("review", "diagnosis")
    assert overlap.weight == pytest.approx(1 - (1 - 0.9) * (1 - 0.7))
    assert (single.weight, single.sources) == (0.9, ("review",))


def test_merging_an_output_along_a_missing_edge_is_an_error():
    with pytest.raises(LookupError, match="no edge generation -> diagnosis"):
        CooperationGraph.default().merge_by_weight([Output("generation", "k", "v", to="diagnosis")])


def test_settings_override_weights_add_and_remove_edges():
    graph = graph_from_settings({
        "edges": [
            {"from": "review", "to": "generation", "weight": 0.8},
            {"from": "diagnosis", "to": "generation", "remove": True},
            {"from": "review", "to": "diagnosis", "weight": 0.4, "kinds": ["subtask.explain"]},
        ],
        "maxRounds": 2,
    })
    assert graph.weight("review", "generation") == 0.8
    assert graph.route("review", K.REJECT) == ("generation",)  # kinds kept when only the weight changes
    with pytest.raises(LookupError):
        graph.weight("diagnosis", "generation")
    assert graph.route("review", K.SUBTASK_EXPLAIN) == ("diagnosis",)
    assert graph.max_rounds("generation", "review") == 2
    assert graph_from_settings(None).render_text() == CooperationGraph.default().render_text()


def test_bad_settings_are_explained_all_at_once():
    text = settings_problems({
        "edges": [{"from": "review", "to": "tester", "weight": 0.5}, {"from": "generation", "to": "diagnosis"},
                  {"from": "review", "to": "generation", "kinds": ["rejct"]}, "review -> generation"],
        "maxRound": 3,
        "maxRounds": 0,
    })
    assert "unknown key 'maxRound' in cooperation settings (known: edges, maxRounds)" in text
    assert "edges[0] (review -> tester): unknown agent 'tester'" in text
    assert "edges[1] (generation -> diagnosis): a new edge needs both 'weight' and 'kinds'" in text
    assert "edges[2] (review -> generation): unknown message kind 'rejct'" in text
    assert "edges[3]: must be an object" in text
    assert "'maxRounds' must be a whole number >= 1, got 0" in text


def test_a_new_loop_from_settings_needs_max_rounds():
    loop = {"edges": [{"from": "diagnosis", "to": "coordinator", "kinds": ["subtask.explain"]}]}
    assert "cycle coordinator -> diagnosis -> coordinator has no round bound" in settings_problems(loop)
    bounded = graph_from_settings({**loop, "maxRounds": 2})
    assert bounded.max_rounds("coordinator", "diagnosis") == 2
    assert RoundBound(frozenset({"coordinator", "diagnosis"}), 2) in bounded.round_bounds
    assert "weight 2 is outside (0, 1]" in settings_problems(
        {"edges": [{"from": "review", "to": "generation", "weight": 2}]})


def test_review_asks_diagnosis_along_a_bounded_edge_and_the_text_shows_the_flow():
    graph = CooperationGraph.default()
    assert graph.route("review", K.SUBTASK_CHALLENGE) == ("diagnosis",)
    assert graph.round_limit("review", "diagnosis") == 20
    assert graph.round_limit("generation", "review") == 3, "the fix loop keeps its own bound"
    text = graph.render_text()
    assert "review -> diagnosis" in text and "subtask.challenge" in text
    assert "flows:" in text and "review -> diagnosis: subtask.challenge" in text


def test_text_rendering_lists_agents_edges_weights_and_bounds():
    text = CooperationGraph.default().render_text()
    assert "agents: coordinator, diagnosis, generation, review" in text
    edge = ["review", "->", "generation", "0.90", "reject,", "subtask.propose_fix"]
    assert any(line.split() == edge for line in text.splitlines())
    assert "generation <-> review: at most 3 rounds per task" in text


def test_mermaid_rendering_draws_every_edge_with_its_weight_and_kinds():
    graph = CooperationGraph.default()
    lines = graph.render_mermaid().splitlines()
    assert lines[0] == "graph TD"
    assert "  review -->|0.9 reject, subtask.propose_fix| generation" in lines
    assert "  generation -->|0.6 subtask.verify, reply, error| review" in lines
    assert "  diagnosis -.->|0.7 reply, error| coordinator" in lines  # replies drawn dotted
    assert sum("-->" in line or "-.->" in line for line in lines) == len(graph.edges)


async def test_the_seeds_four_steps_run_on_the_broker_and_the_graph():
    """Allocation, decomposition, collaborative processing (review sends the patch back) and integration by weight,
    written the way a coordinator would, with stand-in agents."""
    from metagpt_lsp.agents.broker.broker import Broker

    class Diagnosis:
        name, watches = "diagnosis", (K.SUBTASK_EXPLAIN,)

        async def handle(self, message, context):
            context.reply("foo is never defined")

    class Generation:
        name, watches = "generation", (K.SUBTASK_PROPOSE_FIX,)

        async def handle(self, message, context):
            explanation, round_, reason = message.payload
            context.reply(f"patch {round_}" + (f" (after: {reason})" if reason else ""))

    class Review:
        name, watches = "review", (K.SUBTASK_VERIFY,)

        async def handle(self, message, context):
            accepted = message.payload.startswith("patch 2")
            why = "ok" if accepted else f"{message.payload} does not parse"
            context.reply((Verdict.PROPOSE if accepted else Verdict.REJECT, why))

    graph = CooperationGraph.default()
    async with Broker(router=graph) as broker:
        for agent in (Diagnosis(), Generation(), Review()):
            broker.subscribe(agent)
        async with broker.open_task(timeout=30) as task:  # allocation: the graph routes each subtask
            explanation = (await task.request(K.SUBTASK_EXPLAIN, "F821 undefined name 'foo'")).payload
            reason, verdicts = None, []
            for round_ in range(1, graph.max_rounds("generation", "review") + 1):  # decomposition, bounded
                patch = (await task.request(K.SUBTASK_PROPOSE_FIX, (explanation, round_, reason))).payload
                verdict, why = (await task.request(K.SUBTASK_VERIFY, patch)).payload
                (decision,) = graph.merge_by_weight([  # integration: the rejection outweighs the proposal
                    Output("generation", "patch", patch, Verdict.PROPOSE, to="review"),
                    Output("review", "patch", why, verdict, to="generation"),
                ])
                verdicts.append(decision.verdict)
                if decision.verdict is Verdict.PROPOSE:
                    break
                reason = decision.value  # collaborative processing: the next round sees the reason
        trace = broker.trace(task.id)
    assert verdicts == [Verdict.REJECT, Verdict.PROPOSE]
    assert patch == "patch 2 (after: patch 1 does not parse)"
    assert [(m.sender, m.kind) for m in trace.messages()][:3] == [
        ("coordinator", K.SUBTASK_EXPLAIN), ("diagnosis", K.REPLY), ("coordinator", K.SUBTASK_PROPOSE_FIX)]
    assert len(trace.messages()) == 10
