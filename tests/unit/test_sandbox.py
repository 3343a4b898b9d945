"""The sandbox that runs code the team must not trust: no secrets, no stdin, its own empty folder, limits that hold,
a timeout that kills everything it started; and calling one function of a module with literal inputs."""

from __future__ import annotations

import os
import select
import time

from metagpt_lsp.agents.edits.sandbox import call_function, call_functions, run_python


async def test_it_cannot_read_an_environment_variable_holding_a_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-should-not-leak")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "also-secret")
    monkeypatch.setenv("PYTHONPATH", "/somewhere")
    run = await run_python("import os, json; print(json.dumps(dict(os.environ)))", timeout_s=10)
    assert run.ok, run.stderr
    assert "sk-secret" not in run.stdout and "also-secret" not in run.stdout
    assert "OPENAI" not in run.stdout and "PYTHONPATH" not in run.stdout


async def test_it_starts_in_an_empty_folder_of_its_own_that_is_gone_afterwards():
    run = await run_python("import os; print(os.getcwd()); print(os.listdir('.')); open('left.txt', 'w')",
                           timeout_s=10)
    assert run.ok, run.stderr
    folder, listing = run.stdout.splitlines()
    assert listing == "[]"
    assert folder != os.getcwd()
    assert not os.path.exists(folder), "the working folder is removed with what was written in it"


async def test_it_has_no_stdin():
    run = await run_python("import sys; print(repr(sys.stdin.read()))", timeout_s=10)
    assert run.stdout.strip() == "''"


async def test_it_cannot_outlive_its_timeout_nor_leave_children_behind():
    source = ("import subprocess, sys\n"
              "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
              "print(child.pid, flush=True)\n"
              "while True:\n    pass\n")
    began = time.monotonic()
    run = await run_python(source, timeout_s=1.0)
    assert run.timed_out and not run.ok
    assert time.monotonic() - began < 6
    child = int(run.stdout.split()[0])
    assert not _alive(child), "the process group was killed, the child it started with it"


def _alive(pid: int) -> bool:
    """Whether ``pid`` is still running 5 s on: a pidfd becomes readable the moment the process ends (no polling)."""
    try:
        descriptor = os.pidfd_open(pid)
    except ProcessLookupError:
        return False
    try:
        readable, _, _ = select.select([descriptor], [], [], 5.0)
        return not readable
    finally:
        os.close(descriptor)


async def test_memory_is_capped():
    run = await run_python("block = bytearray(600 * 1024 * 1024)\nprint('allocated')", timeout_s=10, memory_mb=256)
    assert "allocated" not in run.stdout
    assert "MemoryError" in run.stderr


async def test_a_function_is_called_with_literal_inputs_and_answers_its_repr_or_its_error():
    module = ("def mean(xs):\n    return sum(xs) / len(xs) - 1\n\n"
              "if __name__ == '__main__':\n    raise SystemExit('main ran')\n")
    outcome = await call_function(module, "mean", "[2, 4]", expected_literal="3.0")
    assert (outcome.status, outcome.value, outcome.matches) == ("returned", "2.0", False)
    assert outcome.describe("mean([2, 4])") == "mean([2, 4]) returns 2.0"
    empty, right, bad = await call_functions(module, "mean", [("[]", None), ("[3, 5]", "3.0"),
                                                              ("__import__('os').system('true')", None)])
    assert (empty.status, empty.value) == ("raised", "ZeroDivisionError: division by zero")
    assert right.matches is True
    assert bad.status == "bad_input", "an argument that is not a literal is never evaluated"


async def test_arguments_that_do_not_fit_the_signature_are_a_bad_call_and_nothing_runs():
    module = "def f(n, *, scale=1):\n    raise RuntimeError('ran')\n"
    calls = [("1, 2", None), ("1, size=2", None), ("1, scale=2", None)]
    extra, keyword, fits = await call_functions(module, "f", calls)
    assert (extra.status, keyword.status) == ("bad_call", "bad_call")
    assert extra.value == "TypeError: too many positional arguments"
    assert not extra.ran, "a call the function cannot take says nothing about the code"
    assert (fits.status, fits.value) == ("raised", "RuntimeError: ran")


async def test_a_call_that_loops_is_a_timeout_and_the_next_calls_still_run():
    module = "def f(n):\n    while n:\n        pass\n    return n\n"
    spin, zero = await call_functions(module, "f", [("1", None), ("0", "0")], timeout_s=0.5)
    assert spin.status == "timeout"
    assert zero.matches is True


async def test_a_module_that_does_not_load_is_unloadable_not_a_verdict():
    outcome = await call_function("import no_such_package_here\ndef f():\n    return 1\n", "f", "")
    assert outcome.status == "unloadable" and "no_such_package_here" in outcome.value
    assert not outcome.ran
