"""``check`` on the batch engine when things go wrong: Ctrl-C mid-run, an LLM that fails and recovers, a cluster the
user started elsewhere.

Every test runs the real ``metagpt-lsp check`` command against the scripted LLM and counts what reached it. Nothing
sleeps or times anything: a slow model is a gate the test opens, and the test reads the command's progress lines as
they come to know what has finished.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
from pathlib import Path

import pytest

from metagpt_lsp.testing.lsp_support import WAIT_S
from metagpt_lsp.testing.scripted_editor import (
    ASKS_REVIEW,
    CLI,
    Checked,
    GitProject,
    review_rule,
    run_check,
    server_environment,
)
from metagpt_lsp.testing.scripted_llm import Rule, ScriptedLlm

NAMES = ("alpha", "beta", "gamma", "delta")


def module(name: str) -> str:
    return f'def {name}_total(values):\n    """The sum of values."""\n    return sum(values)\n'


def reviewed(llm: ScriptedLlm, since: int = 0) -> list[str]:
    """The files whose function the review requests from ``since`` on were about (one name per request)."""
    asked = [r.last_user_message for r in llm.completions[since:] if ASKS_REVIEW in r.last_user_message]
    return [name for message in asked for name in NAMES if f"def {name}_total" in message]


@pytest.fixture
def four_files(tmp_path: Path) -> GitProject:
    project = GitProject.create(tmp_path / "repo")
    project.commit({f"{name}.py": module(name) for name in NAMES})
    return project


@pytest.mark.parametrize("jobs", ["1", "2"])
async def test_ctrl_c_stops_cleanly_keeps_what_finished_and_a_rerun_does_not_repeat_it(
        four_files: GitProject, tmp_path: Path, scripted_llm: ScriptedLlm, jobs: str):
    gate = asyncio.Event()
    scripted_llm.script(review_rule(about="def gamma_total", gate=gate), review_rule())
    results = tmp_path / "results.jsonl"
    process = await asyncio.create_subprocess_exec(
        str(CLI), "check", "--all", "--jobs", jobs, "--results", str(results), ".", cwd=four_files.root,
        env=server_environment(scripted_llm, tmp_path / "c1.sqlite3"), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, start_new_session=True)
    assert process.stderr is not None
    try:
        finished: list[str] = []
        while len(finished) < 3:  # alpha, beta and delta finish; gamma's review waits for the gate
            line = await asyncio.wait_for(process.stderr.readline(), WAIT_S)
            assert line, "check ended before three files were finished"
            if match := re.match(r"\[\d+/4\] (\S+): done", line.decode()):
                finished.append(match.group(1))
        while "gamma" not in reviewed(scripted_llm):
            await asyncio.wait_for(scripted_llm.wait_for_requests(len(scripted_llm.requests) + 1), WAIT_S)
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C: the whole foreground process group
        stdout, stderr = await asyncio.wait_for(process.communicate(), WAIT_S)
    finally:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
    said = stderr.decode()
    assert process.returncode == 130, said
    assert f"of 4 file(s) finished; rerun with --results {results} to continue" in said, said
    assert "Traceback" not in said, said
    kept = {json.loads(line)["path"] for line in results.read_text().splitlines()}
    assert kept == {"alpha.py", "beta.py", "delta.py"} == set(finished), kept
    asked = len(scripted_llm.completions)
    gate.set()  # the interrupted run's gamma request may now be answered; nobody is listening any more
    again: Checked = await run_check(four_files, scripted_llm, tmp_path / "c2.sqlite3", "--all", "--jobs", jobs,
                                 "--results", str(results), ".")
    assert again.returncode == 0, again.stderr
    assert "4 file(s) checked (3 from --results)" in again.stderr
    redone = reviewed(scripted_llm, asked)
    assert redone == ["gamma"], "only the file that had not finished"


def _failing_once_then_answering(llm: ScriptedLlm) -> None:
    llm.script(Rule(fault="500", last_user=ASKS_REVIEW, times=1), review_rule())


async def test_an_llm_answering_500_then_succeeding_is_retried_by_the_client(
        four_files: GitProject, tmp_path: Path, scripted_llm: ScriptedLlm):
    _failing_once_then_answering(scripted_llm)
    done = await run_check(four_files, scripted_llm, tmp_path / "c.sqlite3", "--all", "--format", "json", "alpha.py")
    assert done.returncode == 0, done.stderr
    (record,) = json.loads(done.stdout)["files"]
    assert (record["status"], record["attempts"]) == ("done", 1)
    assert reviewed(scripted_llm) == ["alpha", "alpha"], "the 500, then the retry that was answered"


async def test_a_task_whose_llm_failed_is_tried_again_after_a_backoff_and_succeeds(
        four_files: GitProject, tmp_path: Path, scripted_llm: ScriptedLlm):
    _failing_once_then_answering(scripted_llm)
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"llm": {"maxRetries": 0}}))  # the client gives up at once: the task fails
    done = await run_check(four_files, scripted_llm, tmp_path / "c.sqlite3", "--all", "--format", "json",
                       "--settings", str(settings), "--retries", "1", "alpha.py")
    assert done.returncode == 0, done.stderr
    (record,) = json.loads(done.stdout)["files"]
    assert (record["status"], record["attempts"]) == ("done", 2)
    assert reviewed(scripted_llm) == ["alpha", "alpha"]


async def test_scheduler_joins_a_cluster_started_elsewhere_with_the_results_of_one_process(
        four_files: GitProject, tmp_path: Path, scripted_llm: ScriptedLlm, monkeypatch: pytest.MonkeyPatch):
    import distributed

    scripted_llm.script(review_rule())
    for name, value in server_environment(scripted_llm, tmp_path / "workers.sqlite3").items():
        monkeypatch.setenv(name, value)  # the cluster's workers are threads of this process: they read this one
    cluster = await asyncio.to_thread(distributed.LocalCluster, n_workers=2, threads_per_worker=1,
                                      processes=False, protocol="tcp://", dashboard_address=None)
    try:
        address = cluster.scheduler_address
        assert address.startswith("tcp://")
        joined = await run_check(four_files, scripted_llm, tmp_path / "c1.sqlite3", "--all", "--format", "json",
                             "--scheduler", address, "--endpoint", scripted_llm.base_url, ".")
        ran_on = sum(worker.state.executed_count for worker in cluster.workers.values())
    finally:
        await asyncio.to_thread(cluster.close)
    alone = await run_check(four_files, scripted_llm, tmp_path / "c2.sqlite3", "--all", "--format", "json", ".")
    assert (joined.returncode, alone.returncode) == (0, 0), joined.stderr + alone.stderr
    assert ran_on == 4, "every file ran on the cluster the test started"
    assert _comparable(joined.stdout) == _comparable(alone.stdout)
    assert sorted(reviewed(scripted_llm)) == sorted(NAMES * 2)


def _comparable(stdout: str) -> list[dict[str, object]]:
    return [{key: value for key, value in record.items() if key != "attempts"}
            for record in json.loads(stdout)["files"]]


def test_a_results_line_cut_short_by_a_kill_costs_only_that_line(tmp_path: Path):
    from metagpt_lsp.server.cli.check_engine import ResultsLog

    results = tmp_path / "results.jsonl"
    kept = {"key": "k1", "path": "alpha.py", "status": "done", "findings": []}
    results.write_text(json.dumps(kept) + "\n" + '{"key": "k2", "path": "beta.py", "sta')
    log = ResultsLog(results)
    assert set(log.done) == {"k1"}
    log.append({"key": "k3", "path": "gamma.py", "status": "done", "findings": []})
    log.close()
    assert set(ResultsLog(results).done) == {"k1", "k3"}, "the next record is not glued onto the cut line"
