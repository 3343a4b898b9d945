"""Scoring a QuixBugs program: run its own tests on a candidate text of the program, in a subprocess with a timeout.

The data set (``/work/shared/data/quixbugs``, see its README) keeps each program's upstream pytest file, which
expects upstream's layout: the program under test imported from a package ``python_programs``, the flags
``pytest.use_correct`` and ``pytest.run_slow`` set by upstream's conftest, JSON cases read by ``load_testdata``
(``json_testcases/<name>.json``, one ``[input, expected]`` per line) and graph nodes from ``node``. :func:`run_tests`
builds that layout in a temporary folder around the text to score and runs pytest there, killing the whole process
group on timeout (the buggy ``bitcount`` and ``breadth_first_search`` loop forever). Upstream's own test logic is
kept: generators compared as lists, ``sqrt`` within its epsilon, the slow ``knapsack`` and ``levenshtein`` cases
skipped as upstream skips them.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

DATA = Path(os.environ.get("QUIXBUGS_DATA", "/work/shared/data/quixbugs"))

CONFTEST = """import pytest


def pytest_configure(config):
    pytest.use_correct = False
    pytest.run_slow = False
"""
LOAD_TESTDATA = """import json
from pathlib import Path


def load_json_testcases(name):
    path = Path(__file__).parent / "json_testcases" / f"{name}.json"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
"""


@dataclass(frozen=True)
class Program:
    """One QuixBugs program as the manifest lists it."""

    name: str
    test_kind: str
    folder: Path

    @property
    def buggy(self) -> str:
        return (self.folder / "buggy.py").read_text(encoding="utf-8")

    @property
    def correct(self) -> str:
        return (self.folder / "correct.py").read_text(encoding="utf-8")


@dataclass(frozen=True)
class Score:
    """``outcome`` is "fixed" (every test passes), "failing", "timeout" or "unparsable"; ``detail`` says more."""

    outcome: str
    detail: str = ""

    @property
    def fixed(self) -> bool:
        return self.outcome == "fixed"


def programs(data: Path = DATA) -> list[Program]:
    manifest = json.loads((data / "manifest.json").read_text(encoding="utf-8"))
    return [Program(entry["program"], entry["test_kind"], data / "programs" / entry["program"])
            for entry in manifest["programs"]]


def parses(text: str) -> bool:
    try:
        ast.parse(text)
    except (SyntaxError, ValueError):
        return False
    return True


def _layout(program: Program, text: str, root: Path) -> Path:
    package = root / "python_programs"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / f"{program.name}.py").write_text(text, encoding="utf-8")
    shutil.copy(DATA / "_shared" / "python_programs_node.py", package / "node.py")
    shutil.copy(DATA / "_shared" / "python_testcases_node.py", root / "node.py")
    (root / "conftest.py").write_text(CONFTEST)
    (root / "load_testdata.py").write_text(LOAD_TESTDATA)
    (root / "pytest.ini").write_text("[pytest]\n")
    cases = program.folder / "testcases.jsonl"
    if cases.exists():
        (root / "json_testcases").mkdir()
        shutil.copy(cases, root / "json_testcases" / f"{program.name}.json")
    test_file = root / f"test_{program.name}.py"
    shutil.copy(program.folder / f"test_{program.name}.py", test_file)
    return test_file


def run_tests(program: Program, text: str, timeout_s: float = 30.0) -> Score:
    """Score ``text`` as the program: its upstream tests, all of them, within ``timeout_s``."""
    if not parses(text):
        return Score("unparsable", "the program does not parse")
    with tempfile.TemporaryDirectory(prefix=f"quixbugs-{program.name}-") as folder:
        root = Path(folder)
        test_file = _layout(program, text, root)
        command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-p", "no:randomly",
                   "-o", "timeout=0", "--rootdir", str(root), "-c", str(root / "pytest.ini"), test_file.name]
        process = subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True,
                                   env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
        try:
            output, _ = process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            return Score("timeout", f"the tests did not finish within {timeout_s:g} s")
    text_out = output.decode("utf-8", "replace").strip()
    last = text_out.splitlines()[-1] if text_out else ""
    if process.returncode == 0:
        return Score("fixed", last)
    return Score("failing", last)


def main() -> int:
    """Check the harness itself: every correct program passes, every buggy one fails."""
    wrong = 0
    for program in programs():
        correct, buggy = run_tests(program, program.correct), run_tests(program, program.buggy, timeout_s=10)
        ok = correct.fixed and not buggy.fixed
        wrong += not ok
        print(f"{program.name:28} correct: {correct.outcome:10} buggy: {buggy.outcome:10} "
              f"{'' if ok else 'WRONG ' + correct.detail}")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
