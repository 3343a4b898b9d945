"""Checking a fix by the function's own examples: ``>>>`` examples that call it, run on the patched module.

It executes the user's code, so only where the user allows it (``team.runCode``): the patched module is loaded and
the examples are run in the sandbox (:mod:`.sandbox`: a separate ``python -I`` process, scrubbed environment, empty
temporary folder, memory and CPU limits, no stdin), with the module's own folder on ``sys.path`` for its sibling
imports, under ``__name__ = "__doctest_target__"`` (its ``if __name__ == "__main__":`` block does not run), and a
timeout after which the whole process group is killed — an endless loop is a verdict too ("did not finish"), and a
common one for a wrong fix.

Examples are taken from every string of the module that has some (the function's docstring, the module's, or a
module-level string next to the function, as in QuixBugs) but only those that call the function. The verdict:
``passed`` (every example gives what it shows), ``failed`` (with the first difference, worded for the next round of
generation) or ``inconclusive`` — no examples, or the module could not even be loaded here (a missing third-party
package, say): then the examples neither accept nor reject a fix.
"""

from __future__ import annotations

import ast
import builtins
import doctest
import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

from .sandbox import run_python

DEFAULT_TIMEOUT_S = 10.0
EXAMPLE_CPU_S = 2.0
"""CPU seconds one example may take: examples run in milliseconds, and a wrong fix that loops forever is common, so
it costs this much, not the wall timeout (CPU time, so a busy machine does not cut a correct example short)."""
MEMORY_CAP_MB = 2048
MAX_EXAMPLES = 20

CHECKER_SOURCE = r'''
class Checker(doctest.OutputChecker):
    """Doctest's comparison, and failing that, equal Python literals ([1,5] shows as [1, 5])."""

    def check_output(self, want, got, optionflags):
        if super().check_output(want, got, optionflags):
            return True
        import ast
        try:
            return ast.literal_eval(want.strip()) == ast.literal_eval(got.strip())
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return False
'''
"""The comparison of an example's output, as source for the sandboxed runners (this one and
:mod:`.variant_trials`)."""

_RUNNER = r'''
import doctest, json, signal, sys, types
request = json.loads(open("request.json", encoding="utf-8").read())
if request["folder"]:
    sys.path.insert(0, request["folder"])
module = types.ModuleType("__doctest_target__")
module.__file__ = request["filename"]
sys.modules["__doctest_target__"] = module
try:
    exec(compile(request["source"], request["filename"], "exec"), module.__dict__)
except BaseException as error:
    print(json.dumps({"loaded": False, "error": f"{type(error).__name__}: {error}"}), file=sys.__stderr__)
    sys.exit(0)
failures = []

''' + CHECKER_SOURCE + r'''
class Runner(doctest.DocTestRunner):
    current = None

    def report_start(self, out, test, example):
        """Called before each example: it gets its own CPU budget."""
        self.current = example
        signal.setitimer(signal.ITIMER_PROF, request["cpu_s"])

    def report_failure(self, out, test, example, got):
        failures.append({"source": example.source.strip(), "want": example.want.strip(), "got": got.strip()})

    def report_unexpected_exception(self, out, test, example, exc_info):
        lines = [frame.tb_lineno for frame in _frames(exc_info[2])
                 if frame.tb_frame.f_code.co_filename == request["filename"]]
        failures.append({"source": example.source.strip(), "want": example.want.strip(),
                         "got": f"{exc_info[0].__name__}: {exc_info[1]}", "raised": True,
                         "line": lines[-1] if lines else None})

def _frames(traceback):
    while traceback is not None:
        yield traceback
        traceback = traceback.tb_next

class Late(KeyboardInterrupt):
    """Raised by the CPU alarm: doctest lets KeyboardInterrupt through, so an endless loop ends its example."""

def late(signum, frame):
    raise Late()

signal.signal(signal.SIGPROF, late)
examples = [doctest.Example(e["source"], e["want"], e["exc_msg"]) for e in request["examples"]]
test = doctest.DocTest(examples, module.__dict__, "examples", request["filename"], 0, None)
runner = Runner(checker=Checker(), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
try:
    runner.run(test, out=lambda text: None)
except Late:
    example = runner.current
    failures.append({"source": example.source.strip(), "want": example.want.strip(),
                     "got": f"no result within {request['cpu_s']:g} s of CPU time (an endless loop?)"})
finally:
    signal.setitimer(signal.ITIMER_PROF, 0)
print(json.dumps({"loaded": True, "failures": failures, "count": len(examples)}), file=sys.__stderr__)
'''


@dataclass(frozen=True)
class ExampleFailure:
    """The first example that failed: its source, what it shows, what the function gave, and whether it raised."""

    source: str
    want: str
    got: str
    raised: bool
    line: int | None = None
    """Where it raised: the 1-based line of the module's own code deepest in the traceback (None: it did not raise
    there)."""

    def evidence(self) -> str:
        """"`f(2)` gives 3, its docstring says 4": the failure as a user reads it."""
        what = "raises" if self.raised else "gives"
        return f"`{self.source.strip()}` {what} {self.got.strip()[:160]}, its docstring says {self.want.strip()[:160]}"


@dataclass(frozen=True)
class ExampleRun:
    """What running the examples said: ``verdict`` is "passed", "failed" or "inconclusive"."""

    verdict: str
    examples: int
    summary: str
    first_failure: ExampleFailure | None = None

    @property
    def passed(self) -> bool:
        return self.verdict == "passed"

    @property
    def failed(self) -> bool:
        return self.verdict == "failed"


def examples_for(source: str, function_name: str) -> list[doctest.Example]:
    """The ``>>>`` examples of the module's strings that exercise ``function_name``, in order (at most
    :data:`MAX_EXAMPLES`): those that call it, the steps without output that set up their inputs, and those that
    show what became of a name a call assigned. Each must be runnable: every name it reads is the module's, a
    builtin, or assigned by an example kept before it (prose like ``levenshtein(electron, neutron)`` is not a test
    of anything)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    parser = doctest.DocTestParser()
    module_names = _module_names(tree)
    found: list[doctest.Example] = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str) and ">>>" in node.value.value):
            continue
        try:
            examples = parser.get_examples(node.value.value)
        except ValueError:  # a malformed example (bad indentation): the string is not a doctest
            continue
        found += _exercising(examples, function_name, module_names)
    return found[:MAX_EXAMPLES]


def _exercising(examples: list[doctest.Example], function_name: str, module_names: set[str]) -> list[doctest.Example]:
    """The examples of one string that exercise the function (see :func:`examples_for`); setup steps are kept only
    when a call follows them."""
    kept: list[doctest.Example] = []
    defined = set(module_names)
    results: set[str] = set()  # names a call of the function assigned
    calls = 0
    for example in examples:
        if example.options.get(doctest.SKIP):
            continue
        try:
            tree = ast.parse(example.source)
        except (SyntaxError, ValueError):
            continue
        loads = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        stores = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        if not loads <= defined:
            continue
        calls_it = f"{function_name}(" in example.source
        if calls_it or (loads & results) or (not example.want and stores):
            kept.append(example)
            defined |= stores
            calls += calls_it
            if calls_it:
                results |= stores
    while kept and f"{function_name}(" not in kept[-1].source and not (
            {n.id for n in ast.walk(ast.parse(kept[-1].source)) if isinstance(n, ast.Name)} & results):
        kept.pop()  # trailing setup that no call uses
    return kept if calls else []


def _module_names(tree: ast.Module) -> set[str]:
    """Names the module defines at its top level (and the builtins): what an example may use."""
    names = set(dir(builtins))
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return names


async def run_examples(source: str, function_name: str, module_path: str | None = None,
                       timeout_s: float = DEFAULT_TIMEOUT_S) -> ExampleRun:
    """Run the examples of ``function_name`` against the module text ``source``; see the module docstring."""
    examples = examples_for(source, function_name)
    if not examples:
        return ExampleRun("inconclusive", 0, f"{function_name} has no examples to run")
    folder = str(Path(module_path).parent) if module_path else ""
    request = json.dumps({"source": source, "filename": module_path or f"{function_name}.py", "folder": folder,
                          "cpu_s": EXAMPLE_CPU_S,
                          "examples": [{"source": e.source, "want": e.want, "exc_msg": e.exc_msg} for e in examples]})
    run = await run_python(_RUNNER, timeout_s=timeout_s, memory_mb=MEMORY_CAP_MB, files={"request.json": request})
    if run.timed_out:
        return ExampleRun("failed", len(examples),
                          f"its examples did not finish within {timeout_s:g} s (an endless loop?)")
    return _verdict(run.stderr, len(examples), run.returncode)


def _verdict(stderr: str, count: int, status: int | None) -> ExampleRun:
    lines = [line for line in stderr.splitlines() if line.startswith("{")]
    try:
        result = json.loads(lines[-1])
    except (IndexError, ValueError):
        tail = stderr.strip().splitlines()[-1:] or [f"exit status {status}"]
        return ExampleRun("failed", count, f"running its examples crashed Python: {tail[0][:200]}")
    if not result.get("loaded"):
        return ExampleRun("inconclusive", count, f"the module could not be loaded to run its examples "
                                                 f"({str(result.get('error'))[:200]})")
    failures = result.get("failures") or []
    if not failures:
        return ExampleRun("passed", count, f"its {count} example(s) pass")
    first = failures[0]
    line = first.get("line")
    failure = ExampleFailure(str(first["source"]), str(first["want"]), str(first["got"]), bool(first.get("raised")),
                             line if isinstance(line, int) else None)
    return ExampleRun("failed", count, f"{len(failures)} of its {count} example(s) fail: {first['source']} gave "
                                       f"{first['got'][:160]!r}, expected {first['want'][:160]!r}", failure)


def file_path_of(uri: str) -> str | None:
    """The file behind a ``file:`` URI (its folder goes on ``sys.path`` for sibling imports), None otherwise."""
    parsed = urlparse(uri)
    return url2pathname(parsed.path) if parsed.scheme == "file" else None
