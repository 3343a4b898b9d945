"""``metagpt-lsp check --fix [--apply]`` end to end: the CLI drives the real server over a pipe, the server asks the
scripted LLM, and the fixes come out as a unified diff (written with ``--apply``), with exit codes usable in CI."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from metagpt_lsp.testing.sample_module import STATS
from metagpt_lsp.testing.scripted_editor import (
    ASKS_FIX,
    NO_FINDINGS,
    GitProject,
    challenge_prompts,
    challenge_rule,
    findings,
    review_rule,
    run_check,
)
from metagpt_lsp.testing.scripted_llm import Rule, ScriptedLlm

GOOD_LINE = 'return format(zlib.crc32(data) & 0xFFFFFFFF, "08x")'
BUGGY_LINE = 'return format(zlib.crc32(data) & 0xFFFF, "08x")'
PROBLEM = "masks the CRC to 16 bits"
BUGGY = STATS.replace(GOOD_LINE, BUGGY_LINE)
FIX = f"```python\n{GOOD_LINE}\n```"
CONFIRMED = challenge_rule("b'hello'", "'3610a686'", "'0000a686'")
"""Diagnosis agrees with the finding, naming a call that really gives the wrong value: an explicit check may run it."""
FOUND = f"{PROBLEM} (`checksum(b'hello')` returns '0000a686', expected '3610a686') [metagpt-review]"



@pytest.fixture
def project(tmp_path: Path) -> GitProject:
    project = GitProject.create(tmp_path / "repo")
    project.commit({"stats.py": STATS})
    project.write("stats.py", BUGGY)
    return project



def diff_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(("+", "-")) and not line.startswith(("+++", "---"))]


async def test_check_reports_the_review_finding_and_exits_1(project: GitProject, tmp_path: Path,
                                                             scripted_llm: ScriptedLlm):
    scripted_llm.script(review_rule(findings((BUGGY_LINE, PROBLEM, "error")), about="def checksum"), CONFIRMED)
    done = await run_check(project, scripted_llm, tmp_path / "cache.sqlite3", "stats.py")
    assert done.returncode == 1, done.stderr
    line = BUGGY.splitlines().index(f"    {BUGGY_LINE}") + 1
    # A check is an explicit request: the claimed call runs, and the wrong value it gives makes a warning.
    assert done.stdout.splitlines() == [f"stats.py:{line}:5: warning: {FOUND}"]
    assert len(scripted_llm.completions) == 2, "only the changed function is reviewed (and its finding challenged)"
    assert len(challenge_prompts(scripted_llm)) == 1


async def test_fix_prints_a_diff_and_apply_writes_it(project: GitProject, tmp_path: Path,
                                                     scripted_llm: ScriptedLlm):
    scripted_llm.script(review_rule(findings((BUGGY_LINE, PROBLEM, "error")), about=r"0xFFFF\b"),
                        review_rule(NO_FINDINGS), CONFIRMED, Rule(FIX, last_user=ASKS_FIX))
    cache = tmp_path / "cache.sqlite3"
    shown = await run_check(project, scripted_llm, cache, "--fix", "stats.py")
    assert diff_lines(shown.stdout) == [f"-    {BUGGY_LINE}", f"+    {GOOD_LINE}"], shown.stdout
    assert "--- a/stats.py" in shown.stdout and "+++ b/stats.py" in shown.stdout
    assert shown.returncode == 1, "a diff that was not written leaves the finding in the file"
    assert (project.root / "stats.py").read_text() == BUGGY, "--fix alone must not write"
    assert "1 fix(es) shown as a diff" in shown.stderr
    line = BUGGY.splitlines().index(f"    {BUGGY_LINE}") + 1
    found = f"stats.py:{line}:5: warning: {FOUND}"
    assert shown.stdout.splitlines()[0] == f"{found} (fixed in the diff below)", "the finding is still shown"

    written = await run_check(project, scripted_llm, cache, "--fix", "--apply", "stats.py")
    assert written.returncode == 0, written.stderr
    assert diff_lines(written.stdout) == [f"-    {BUGGY_LINE}", f"+    {GOOD_LINE}"]
    assert (project.root / "stats.py").read_text() == STATS
    assert "1 fix(es) written" in written.stderr
    assert written.stdout.splitlines()[0] == f"{found} (fixed)"

    again = await run_check(project, scripted_llm, cache, "stats.py")
    assert (again.returncode, again.stdout) == (0, ""), again.stderr


async def test_fix_of_a_syntax_error(tmp_path: Path, scripted_llm: ScriptedLlm):
    project = GitProject.create(tmp_path / "repo")
    project.write("greet.py", 'def greet(name)\n    return f"hello {name}"\n')
    scripted_llm.script(Rule('```python\ndef greet(name):\n    return f"hello {name}"\n```', last_user=ASKS_FIX),
                        review_rule(NO_FINDINGS))
    done = await run_check(project, scripted_llm, tmp_path / "cache.sqlite3", "--fix", "--apply", "greet.py")
    assert done.returncode == 0, done.stderr
    assert diff_lines(done.stdout) == ["-def greet(name)", "+def greet(name):"]
    fixed = (project.root / "greet.py").read_text()
    ast.parse(fixed)
    assert fixed == 'def greet(name):\n    return f"hello {name}"\n'


async def test_a_fix_the_team_cannot_make_leaves_the_file_alone_and_exits_1(project: GitProject, tmp_path: Path,
                                                                            scripted_llm: ScriptedLlm):
    scripted_llm.script(review_rule(findings((BUGGY_LINE, PROBLEM, "error"))), CONFIRMED,
                        Rule("I would drop the mask.", last_user=ASKS_FIX))
    done = await run_check(project, scripted_llm, tmp_path / "cache.sqlite3", "--fix", "--apply", "stats.py")
    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines()[0].endswith(FOUND) and "---" not in done.stdout
    assert "not fixed" in done.stderr and "no safe" in done.stderr
    assert (project.root / "stats.py").read_text() == BUGGY


async def test_all_reviews_unchanged_committed_code_too(tmp_path: Path, scripted_llm: ScriptedLlm):
    project = GitProject.create(tmp_path / "repo")
    project.commit({"stats.py": STATS})
    scripted_llm.script(review_rule(NO_FINDINGS))
    cache = tmp_path / "cache.sqlite3"
    unchanged = await run_check(project, scripted_llm, cache, "stats.py")
    assert unchanged.returncode == 0, unchanged.stderr
    assert scripted_llm.completions == [], "nothing changed since HEAD: nothing to review"
    everything = await run_check(project, scripted_llm, cache, "--all", "stats.py")
    assert everything.returncode == 0, everything.stderr
    reviewed = " ".join(request.last_user_message for request in scripted_llm.completions)
    assert "def checksum" in reviewed and len(scripted_llm.completions) >= 2, "--all reviews every unit"
