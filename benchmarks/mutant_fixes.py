"""Fix quality on a set nobody tuned on: the toolz mutants of :mod:`mutants`, team against one direct call, same run.

Each mutant is shown as its unit file (the imports it uses and the mutated function, ``buggy_unit``), exactly as
QuixBugs programs are (:mod:`quixbugs`): the **team** through the real language server ("Explain and fix" on a
"fails its tests" diagnostic at the function's name, with the server's default settings unless told otherwise) and
the **direct** call (one chat completion asking for the fixed program). A fix is scored by the package's own test
file with the fixed function put back into its module (:func:`mutants.score_function`): fixed / wrong / no-edit /
broken, with seconds per fix. Results go to a JSON-lines file as they come (``--resume`` continues a run).

    python benchmarks/mutants.py                      # builds benchmarks/.cache/mutants-toolz.json once
    python benchmarks/mutant_fixes.py [--limit N] [--candidates K] [--results FILE] [--resume] [--report]
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import mutants
import quixbugs


@dataclass(frozen=True)
class MutantProgram:
    """A mutant as the QuixBugs harness takes a program: its name is the function's, ``buggy`` the unit file."""

    mutant: dict

    @property
    def name(self) -> str:
        return self.mutant["function"]

    @property
    def buggy(self) -> str:
        return self.mutant["buggy_unit"]

    def score(self, text: str | None, why_none: str, timeout_s: float) -> tuple[str, str]:
        if text is None:
            return "no-edit", why_none
        return mutants.score_function(self.mutant, text, max(timeout_s, mutants.TEST_TIMEOUT_S))


def programs() -> list[MutantProgram]:
    if not mutants.SET_FILE.exists():
        mutants.main([])
    return [MutantProgram(m) for m in mutants.load_set()]


def workdir(folder: str) -> str:
    """Where the unit files are opened: beside a link to the package, so a fix's examples can import it."""
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    link = path / mutants.PACKAGE
    if not link.exists():
        link.symlink_to((mutants.ROOT / mutants.PACKAGE).resolve())
    return str(path)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--results" not in argv:
        argv += ["--results", "benchmarks/.cache/mutant-fixes-results.jsonl"]
    if "--workdir" not in argv:
        argv += ["--workdir", "/tmp/mutants-work"]
    folder = argv[argv.index("--workdir") + 1]
    if "--report" not in argv:
        workdir(folder)
    quixbugs.programs = programs  # the same harness, this set's programs and scoring
    return quixbugs.main(argv)


if __name__ == "__main__":
    sys.exit(main())
