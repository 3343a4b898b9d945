"""The ``team`` settings branch and the ``metagpt-lsp team`` command that shows the cooperation graph they produce."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from metagpt_lsp.agents.team.graph_settings import graph_from_settings
from metagpt_lsp.server.cli import main
from metagpt_lsp.server.settings import TeamSettings, parse_settings, to_json

OVERRIDE = {"edges": [{"from": "review", "to": "generation", "weight": 0.5}], "maxRounds": 5}
BROKEN = {"edges": [{"from": "review", "to": "gen", "weight": 0.5}], "maxRounds": 0}


def test_a_valid_graph_override_is_kept_and_builds_the_graph_the_team_uses():
    settings, problems = parse_settings({"metagptLsp": {"team": {"graph": OVERRIDE, "fixCandidates": 3}}})
    assert problems == []
    assert settings.team == TeamSettings(graph=OVERRIDE, fix_candidates=3, run_doctests=False)
    graph = graph_from_settings(settings.team.graph)
    assert graph.weight("review", "generation") == 0.5 and graph.max_rounds("generation", "review") == 5
    shown = to_json(settings)["team"]
    assert {key: shown[key] for key in ("graph", "fixCandidates", "runDoctests", "runCode")} == {
        "graph": OVERRIDE, "fixCandidates": 3, "runDoctests": False, "runCode": "onRequest"}


def test_an_invalid_graph_override_names_team_graph_lists_every_problem_and_keeps_the_default():
    settings, problems = parse_settings({"team": {"graph": BROKEN}})
    assert settings.team.graph is None, "the default graph stays"
    (problem,) = problems
    assert problem.path == "team.graph"
    for words in ("unknown agent 'gen'", "'maxRounds' must be a whole number >= 1, got 0", "using the default graph"):
        assert words in problem.message


def test_an_invalid_override_after_a_valid_one_keeps_the_valid_one():
    first, _ = parse_settings({"team": {"graph": OVERRIDE}})
    settings, problems = parse_settings({"team": {"graph": {"maxRounds": -1}}}, first)
    assert settings.team.graph == OVERRIDE
    assert [p.path for p in problems] == ["team.graph"] and "previous override" in problems[0].message


def test_a_graph_override_that_is_not_an_object_is_refused():
    settings, problems = parse_settings({"team": {"graph": ["review", "generation"]}})
    assert settings.team.graph is None
    assert problems[0].path == "team.graph" and "expected an object or null, got list" in problems[0].message


@pytest.mark.parametrize("raw, problem_path", [
    ({"fixCandidates": 0}, "team.fixCandidates"), ({"fixCandidates": 6}, "team.fixCandidates"),
    ({"fixCandidates": "2"}, "team.fixCandidates"), ({"runDoctests": "yes"}, "team.runDoctests"),
    ({"maxRounds": 3}, "team.maxRounds"),
])
def test_bad_team_values_fall_back_to_their_defaults_and_say_which(raw, problem_path):
    settings, problems = parse_settings({"team": raw})
    assert settings.team == TeamSettings()
    assert [p.path for p in problems] == [problem_path]


def test_doctests_are_off_unless_asked_for():
    assert parse_settings({})[0].team.run_doctests is False
    assert parse_settings({"team": {"runDoctests": True}})[0].team.run_doctests is True


# -- metagpt-lsp team -------------------------------------------------------------------------------------------------

def write_settings(tmp_path, data) -> str:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(data) if not isinstance(data, str) else data, encoding="utf-8")
    return str(path)


def test_team_prints_agents_weighted_edges_and_round_bounds(capsys):
    assert main(["team"]) == 0
    out = capsys.readouterr().out
    assert "agents: coordinator, diagnosis, generation, review" in out
    assert "review -> generation       0.90  reject" in out
    assert "generation <-> review: at most 3 rounds per task" in out


def test_team_mermaid_draws_the_graph(capsys):
    assert main(["team", "--mermaid"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("graph TD\n")
    assert "review -->|0.9 reject, subtask.propose_fix| generation" in out
    assert "review -.->|0.9 reply, error| coordinator" in out


@pytest.mark.parametrize("data", [
    {"metagptLsp": {"team": {"graph": OVERRIDE}}},
    {"team": {"graph": OVERRIDE}},
    {"editor.tabSize": 4, "metagptLsp.team.graph": OVERRIDE},
], ids=["section", "bare", "vscode-flat-keys"])
def test_team_shows_the_effect_of_a_settings_override(tmp_path, capsys, data):
    assert main(["team", "--settings", write_settings(tmp_path, data)]) == 0
    out = capsys.readouterr().out
    assert "review -> generation       0.50  reject" in out
    assert "at most 5 rounds per task" in out and "override" in out
    assert main(["team", "--mermaid", "--settings", write_settings(tmp_path, data)]) == 0
    assert "review -->|0.5 reject, subtask.propose_fix| generation" in capsys.readouterr().out


def test_a_bad_override_lists_the_graph_problems_and_exits_2(tmp_path, capsys):
    assert main(["team", "--settings", write_settings(tmp_path, {"metagptLsp": {"team": {"graph": BROKEN}}})]) == 2
    captured = capsys.readouterr()
    assert captured.out == "", "no graph is printed for an override the server would refuse"
    assert "  - edges[0] (review -> gen): unknown agent 'gen'" in captured.err
    assert "  - 'maxRounds' must be a whole number >= 1, got 0" in captured.err


@pytest.mark.parametrize("content, words", [
    ("{not json", "cannot read settings"), ("[1, 2]", "expected a JSON object"),
])
def test_an_unreadable_settings_file_exits_2_with_the_reason(tmp_path, capsys, content, words):
    assert main(["team", "--settings", write_settings(tmp_path, content)]) == 2
    assert words in capsys.readouterr().err
    assert main(["team", "--settings", str(tmp_path / "missing.json")]) == 2
    assert "No such file" in capsys.readouterr().err


def test_the_installed_command_prints_the_overridden_graph(tmp_path):
    path = write_settings(tmp_path, {"metagptLsp": {"team": {"graph": OVERRIDE}}})
    done = subprocess.run([sys.executable, "-m", "metagpt_lsp.server", "team", "--settings", path],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "review -> generation       0.50  reject" in done.stdout
