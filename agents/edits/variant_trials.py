"""Which of many variants of a function pass its examples: one sandbox process runs them all, one after another.

:mod:`.one_token_edits` lists a few hundred variants; starting a process for each would cost more than the search is
worth, so a single sandboxed ``python -I`` (:func:`.sandbox.run_python`: scrubbed environment, empty temporary
folder, memory and CPU limits, process group killed at the wall timeout) receives the module once and the edits, and
for each — the unchanged module first — loads the edited module afresh and runs the examples with doctest's
comparison (equal Python literals match too). Each variant has its own alarm on CPU time (``per_variant_s``; a busy
machine does not cut a variant short), so an endless loop costs one variant, not the run; a variant that kills the
process (memory) is counted failed and the run goes on in a new process from the next one, within ``budget_s`` in all.
The answer says whether the examples show a bug at all (the unchanged module fails one) and which variants pass every
example — at most ``stop_after`` of them, in the order given — and, for the unchanged module and each passing variant,
the lines the examples execute (each example run once more under ``sys.settrace``), so that a repair that keeps the
failing examples on their path can be preferred (:meth:`Trials.ranked`).
"""

from __future__ import annotations

import doctest
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .examples import CHECKER_SOURCE, MEMORY_CAP_MB
from .one_token_edits import TokenEdit
from .sandbox import run_python

_RUNNER = r'''
import ast, doctest, io, json, signal, sys, types
marker, per_variant = sys.argv[1], float(sys.argv[2])
request = json.loads(open("request.json", encoding="utf-8").read())
if request["folder"]:
    sys.path.insert(0, request["folder"])
source = request["source"].encode("utf-8", "surrogatepass")
real_stdout = sys.stdout

def answer(payload):
    real_stdout.write(marker + json.dumps(payload) + "\n")
    real_stdout.flush()

class Late(KeyboardInterrupt):
    """Raised by the CPU alarm: doctest lets KeyboardInterrupt through, so a looping variant ends at once."""

def late(signum, frame):
    raise Late()

signal.signal(signal.SIGPROF, late)

''' + CHECKER_SOURCE + r'''
examples = [doctest.Example(e["source"], e["want"], e["exc_msg"]) for e in request["examples"]]

def load(text):
    module = types.ModuleType("__doctest_target__")
    module.__file__ = request["filename"]
    sys.modules["__doctest_target__"] = module
    exec(compile(text, request["filename"], "exec"), module.__dict__)
    return module

def path_of(text):
    """The lines of the module the examples execute (doctest turns tracing off, so each example runs bare here)."""
    lines = set()

    def tracer(frame, event, arg):
        if frame.f_code.co_filename != request["filename"]:
            return None
        if event == "line":
            lines.add(frame.f_lineno)
        return tracer

    try:
        signal.setitimer(signal.ITIMER_PROF, per_variant)
        module = load(text)
        for example in examples:
            sys.settrace(tracer)
            try:
                exec(compile(example.source, "<example>", "exec"), module.__dict__)
            except Late:
                raise
            except BaseException:
                pass
            finally:
                sys.settrace(None)
        signal.setitimer(signal.ITIMER_PROF, 0)
    except BaseException:
        sys.settrace(None)
        signal.setitimer(signal.ITIMER_PROF, 0)
        return None
    return sorted(lines)

passing = 0
for variant in request["variants"]:
    start, end, new = variant["edit"] or (0, 0, "")
    text = (source[:start] + new.encode("utf-8", "surrogatepass") + source[end:]).decode("utf-8", "surrogatepass")
    sys.stdout = io.StringIO()  # what the module prints is not an answer
    try:
        signal.setitimer(signal.ITIMER_PROF, per_variant)
        module = load(text)
        runner = doctest.DocTestRunner(checker=Checker(),
                                       optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        test = doctest.DocTest(list(examples), module.__dict__, "examples", request["filename"], 0, None)
        failed = runner.run(test, out=lambda text: None, clear_globs=False).failed
        signal.setitimer(signal.ITIMER_PROF, 0)
        outcome = "passed" if failed == 0 else "failed"
    except Late:
        outcome = "late"
    except BaseException:
        signal.setitimer(signal.ITIMER_PROF, 0)
        outcome = "unloadable"
    path = path_of(text) if outcome == "passed" or (variant["edit"] is None and outcome == "failed") else None
    answer({"index": variant["index"], "outcome": outcome, "path": path})
    passing += outcome == "passed" and variant["edit"] is not None
    if passing >= request["stop_after"]:
        break
'''


@dataclass(frozen=True)
class Trials:
    """What the run found: whether the unchanged module fails an example (``shows_bug``), the indices of the edits
    that pass every example, and how many edits were tried; ``paths``: the lines the examples execute, of the
    unchanged module (index -1) and of each passing edit, where they could be traced."""

    shows_bug: bool
    passing: tuple[int, ...]
    tried: int
    paths: Mapping[int, frozenset[int]] = field(default_factory=dict)

    def ranked(self) -> tuple[int, ...]:
        """The passing edits, those under which the examples take the path they take on the unchanged module first
        (fewest lines executed or skipped that were not before), then in the order given. The defect lies on the
        path the failing examples took: a repair that passes them by sending them down another path (flipping the
        branch they take) more often hides the defect than fixes it."""
        base = self.paths.get(-1)

        def detour(index: int) -> float:
            path = self.paths.get(index)
            if base is None:
                return 0.0
            return float("inf") if path is None else float(len(path ^ base))

        return tuple(sorted(self.passing, key=detour))  # a stable sort: ties keep the order given


async def try_variants(module_source: str, edits: Sequence[TokenEdit], examples: Sequence[doctest.Example],
                       module_path: str | None = None, per_variant_s: float = 0.25, budget_s: float = 30.0,
                       stop_after: int = 4) -> Trials:
    """Run ``examples`` on the unchanged module, then on each edit of it (byte offsets into its UTF-8 text) until
    ``stop_after`` pass or ``budget_s`` is spent; see the module docstring."""
    if not examples:
        return Trials(False, (), 0)
    pending: list[dict[str, Any]] = [{"index": -1, "edit": None}] + [
        {"index": i, "edit": [e.start_byte, e.end_byte, e.new_text]} for i, e in enumerate(edits)]
    outcomes: dict[int, str] = {}
    paths: dict[int, frozenset[int]] = {}
    remaining = budget_s
    while pending and remaining > per_variant_s:
        marker = f"@@{secrets.token_hex(8)}@@"
        request = {"source": module_source, "filename": module_path or "module_under_repair.py",
                   "folder": str(Path(module_path).parent) if module_path else "", "variants": pending,
                   "examples": [{"source": e.source, "want": e.want, "exc_msg": e.exc_msg} for e in examples],
                   "stop_after": stop_after - sum(1 for i, o in outcomes.items() if i >= 0 and o == "passed")}
        run = await run_python(_RUNNER, timeout_s=remaining, memory_mb=MEMORY_CAP_MB,
                               files={"request.json": json.dumps(request)}, argv=(marker, f"{per_variant_s:g}"))
        remaining -= max(run.seconds, per_variant_s)
        answered = [json.loads(line[len(marker):]) for line in run.stdout.splitlines() if line.startswith(marker)]
        outcomes.update({int(a["index"]): str(a["outcome"]) for a in answered})
        paths.update({int(a["index"]): frozenset(a["path"]) for a in answered if isinstance(a.get("path"), list)})
        if run.returncode == 0 and not run.timed_out:
            break
        # The process died on the variant after the last answered one: count it failed, go on from the next.
        pending = pending[len(answered):]
        if pending:
            outcomes[int(pending[0]["index"])] = "crashed"
            pending = pending[1:]
    shows_bug = outcomes.get(-1) in ("failed", "late", "crashed")
    passing = tuple(index for index, outcome in sorted(outcomes.items()) if index >= 0 and outcome == "passed")
    return Trials(shows_bug, passing[:stop_after], sum(1 for index in outcomes if index >= 0), paths)
