"""What changed, against HEAD, another git ref or a base text the caller holds: the same units either way."""

from __future__ import annotations

from pathlib import Path

from metagpt_lsp.agents.syntax import DocumentSnapshot
from metagpt_lsp.agents.team import changed_units, text_at, units_changed_from
from metagpt_lsp.testing.sample_module import STATS
from metagpt_lsp.testing.scripted_editor import GitProject

CHANGED = STATS.replace("0xFFFFFFFF", "0xFFFF")


def names(units) -> list[str]:
    return [unit.name for unit in units]


def test_a_ref_a_base_text_and_head_give_the_same_changed_units(tmp_path: Path):
    project = GitProject.create(tmp_path / "repo")
    project.commit({"stats.py": STATS})
    project.git("branch", "base")
    project.commit({"stats.py": CHANGED}, "change checksum")
    path = project.write("stats.py", CHANGED.replace("def median(", "def median_of("))
    snapshot = DocumentSnapshot.open(path.resolve().as_uri(), 1, path.read_text())
    base, basis = text_at(path, "base")
    assert basis == "git" and base == STATS
    against_ref = changed_units(snapshot, base="base")
    assert names(against_ref.units) == names(units_changed_from(snapshot, base).units)
    assert "checksum" in names(against_ref.units) and "median_of" in names(against_ref.units)
    assert names(changed_units(snapshot).units) == ["median_of"], "HEAD already has the checksum change"


def test_no_base_text_means_every_unit_and_a_missing_ref_says_why(tmp_path: Path):
    project = GitProject.create(tmp_path / "repo")
    project.commit({"stats.py": STATS})
    path = project.root / "stats.py"
    snapshot = DocumentSnapshot.open(path.resolve().as_uri(), 1, STATS)
    whole = units_changed_from(snapshot, None)
    assert whole.basis == "whole file" and len(whole.units) > 1
    assert units_changed_from(snapshot, STATS).units == ()
    assert text_at(path, "no-such-branch")[1].startswith("no commit 'no-such-branch'")
    assert text_at(project.write("new.py", "x = 1\n"), "HEAD") == (None, "untracked")
    assert text_at(tmp_path / "outside.py", "HEAD") == (None, "not in a git repository")
