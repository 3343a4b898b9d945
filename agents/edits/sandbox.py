"""Running Python code the team did not write and must not trust: a fix's candidate, a function called with an input.

Every run is a separate ``python -I`` process (no user site, no ``PYTHON*`` variables honoured) with:

- a scrubbed environment: only ``PATH``, ``LANG`` and ``HOME`` (the temporary folder) — no API keys, no
  ``OPENAI_*``, nothing else of the language server's environment;
- an empty temporary working folder of its own (removed afterwards), holding only the files the caller hands over;
- no stdin (``/dev/null``), stdout and stderr read up to a cap;
- limits set before it starts: address space (``memory_mb``), CPU seconds, file size, open files, no core dumps;
- a wall-clock timeout after which its whole process group is killed (it runs in a session of its own), and the
  same when the caller is cancelled.

:func:`run_python` runs a script; :func:`call_function` / :func:`call_functions` load a module's source (its
``if __name__ == "__main__":`` block does not run) and call one of its functions with literal arguments, answering
the ``repr`` of what it returned or the exception it raised — what review needs to run "the claimed input" against a
unit. Arguments and expected values are Python literals, parsed with ``ast.literal_eval`` inside the sandbox: what a
model wrote is data there, never code.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import secrets
import signal
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_MEMORY_MB = 1024
MAX_OUTPUT_BYTES = 256 * 1024
MAX_FILE_BYTES = 16 * 1024 * 1024
SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass(frozen=True)
class SandboxRun:
    """How a sandboxed run ended: its exit status (negative: the signal that ended it), what it printed (each
    stream cut at :data:`MAX_OUTPUT_BYTES`), whether the wall timeout ended it, and how long it took."""

    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool
    seconds: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


@dataclass(frozen=True)
class CallOutcome:
    """One call of a function in the sandbox.

    ``status``: "returned" (``value`` is the repr of the result), "raised" (``value`` is ``Type: message``),
    "timeout" (did not finish in time), "unloadable" (the module itself failed to load: ``value`` says why),
    "bad_input" (the arguments or the expected value were not Python literals), "bad_call" (the arguments do not fit
    the function's signature: it was not called) or "crashed" (the process died: memory, a signal). ``matches`` is
    whether the result equals ``expected`` when one was given, else None.
    """

    status: str
    value: str
    matches: bool | None = None

    @property
    def ran(self) -> bool:
        """The function really ran on the input (returned or raised): a verdict about the code, not the setup."""
        return self.status in ("returned", "raised", "timeout")

    def describe(self, call: str) -> str:
        if self.status == "returned":
            return f"{call} returns {self.value}"
        if self.status == "raised":
            return f"{call} raises {self.value}"
        if self.status == "timeout":
            return f"{call} did not finish ({self.value})"
        return f"{call} could not be run ({self.status}: {self.value})"


def scrubbed_environment(home: str) -> dict[str, str]:
    """All a sandboxed process sees of the environment: a minimal PATH, a UTF-8 locale, its own folder as HOME."""
    return {"PATH": SAFE_PATH, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": home, "PYTHONHASHSEED": "0",
            "PYTHONIOENCODING": "utf-8"}


def _limits(memory_mb: int, cpu_s: int):
    def apply() -> None:  # runs in the child between fork and exec: only async-signal-safe work
        import resource

        memory = memory_mb * 1024 * 1024
        for limit, value in ((resource.RLIMIT_AS, memory), (resource.RLIMIT_CPU, cpu_s),
                             (resource.RLIMIT_FSIZE, MAX_FILE_BYTES), (resource.RLIMIT_NOFILE, 64),
                             (resource.RLIMIT_CORE, 0)):
            try:
                resource.setrlimit(limit, (value, value))
            except (ValueError, OSError):
                pass

    return apply


async def run_python(source: str, timeout_s: float = DEFAULT_TIMEOUT_S, memory_mb: int = DEFAULT_MEMORY_MB,
                     files: Mapping[str, str] | None = None, argv: Sequence[str] = ()) -> SandboxRun:
    """Run ``source`` as a script in the sandbox (see the module docstring). ``files`` (name -> text) are written
    into its otherwise empty working folder first; ``argv`` follows the script."""
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="metagpt-lsp-sandbox-") as folder:
        _write_files(folder, files or {})
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-I", "-X", "utf8", "-c", source, *argv, cwd=folder, env=scrubbed_environment(folder),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
            preexec_fn=_limits(memory_mb, max(1, math.ceil(timeout_s)) + 1) if os.name == "posix" else None)
        assert process.stdout is not None and process.stderr is not None
        streams = asyncio.gather(_read_capped(process.stdout), _read_capped(process.stderr))
        timed_out = False
        try:
            await asyncio.wait_for(process.wait(), timeout_s)
        except TimeoutError:
            timed_out = True
        except asyncio.CancelledError:
            _kill_group(process.pid)
            await process.wait()
            streams.cancel()
            raise
        finally:
            _kill_group(process.pid)  # whatever it left running in its group goes with it
        if timed_out:
            await process.wait()
        stdout, stderr = await streams
    return SandboxRun(process.returncode, stdout, stderr, timed_out, time.monotonic() - began)


def _write_files(folder: str, files: Mapping[str, str]) -> None:
    for name, text in files.items():
        path = Path(folder, name)
        if path.parent != Path(folder):
            raise ValueError(f"sandbox files go in the working folder itself, not {name!r}")
        path.write_text(text, encoding="utf-8", errors="surrogatepass")


async def _read_capped(stream: asyncio.StreamReader) -> str:
    kept = bytearray()
    while chunk := await stream.read(65536):
        if len(kept) < MAX_OUTPUT_BYTES:
            kept += chunk[:MAX_OUTPUT_BYTES - len(kept)]
    return kept.decode("utf-8", "replace")


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


_CALLER = r'''
import ast, inspect, io, json, math, signal, sys, types
marker, per_call = sys.argv[1], float(sys.argv[2])
request = json.loads(open("request.json", encoding="utf-8").read())
if request["folder"]:
    sys.path.insert(0, request["folder"])
real_stdout = sys.stdout

def answer(payload):
    real_stdout.write(marker + json.dumps(payload) + "\n")
    real_stdout.flush()

class Late(BaseException):
    pass

def late(signum, frame):
    raise Late()

signal.signal(signal.SIGALRM, late)
module = types.ModuleType("__sandbox_target__")
module.__file__ = request["filename"]
sys.modules["__sandbox_target__"] = module
sys.stdout = io.StringIO()
try:
    signal.setitimer(signal.ITIMER_REAL, per_call)
    exec(compile(request["source"], request["filename"], "exec"), module.__dict__)
    signal.setitimer(signal.ITIMER_REAL, 0)
    function = module.__dict__[request["function"]]
except BaseException as error:
    signal.setitimer(signal.ITIMER_REAL, 0)
    answer({"loaded": False, "error": f"{type(error).__name__}: {error}"[:300]})
    sys.exit(0)

def same(got, want):
    if isinstance(got, float) or isinstance(want, float):
        try:
            return math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9)
        except TypeError:
            return False
    try:
        return bool(got == want)
    except Exception:
        return False

def literal_call(text):
    tree = ast.parse(f"f({text})", mode="eval").body
    args = [ast.literal_eval(arg) for arg in tree.args]
    kwargs = {k.arg: ast.literal_eval(k.value) for k in tree.keywords if k.arg}
    return args, kwargs

for call in request["calls"]:
    try:
        args, kwargs = literal_call(call["args"])
        want = ast.literal_eval(call["expected"]) if call.get("expected") is not None else None
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as error:
        answer({"status": "bad_input", "value": f"{type(error).__name__}: {error}"[:200]})
        continue
    try:
        inspect.signature(function).bind(*args, **kwargs)
    except TypeError as error:
        answer({"status": "bad_call", "value": f"TypeError: {error}"[:200]})
        continue
    except ValueError:  # no signature to check (a builtin): the call itself will say
        pass
    try:
        signal.setitimer(signal.ITIMER_REAL, per_call)
        got = function(*args, **kwargs)
        signal.setitimer(signal.ITIMER_REAL, 0)
        shown = repr(got)
        matches = same(got, want) if call.get("expected") is not None else None
        answer({"status": "returned", "value": shown[:500], "matches": matches})
    except Late:
        answer({"status": "timeout", "value": f"over {per_call:g} s"})
    except BaseException as error:
        signal.setitimer(signal.ITIMER_REAL, 0)
        answer({"status": "raised", "value": f"{type(error).__name__}: {error}"[:300],
                "matches": False if call.get("expected") is not None else None})
'''


async def call_functions(module_source: str, function_name: str, calls: Sequence[tuple[str, str | None]],
                         timeout_s: float = 5.0, memory_mb: int = DEFAULT_MEMORY_MB,
                         module_path: str | None = None) -> list[CallOutcome]:
    """Load ``module_source`` once and call ``function_name`` for each ``(args_literal, expected_literal or
    None)``: ``args_literal`` is the text between the call's parentheses (``"[2, 4], key=1"``), every argument a
    Python literal. Each call has ``timeout_s``; the module's folder (from ``module_path``) is on ``sys.path``."""
    if not calls:
        return []
    marker = f"@@{secrets.token_hex(8)}@@"
    request = {"source": module_source, "filename": module_path or f"{function_name}.py",
               "folder": str(Path(module_path).parent) if module_path else "", "function": function_name,
               "calls": [{"args": args, "expected": expected} for args, expected in calls]}
    run = await run_python(_CALLER, timeout_s=timeout_s * (len(calls) + 1) + 2.0, memory_mb=memory_mb,
                           files={"request.json": json.dumps(request)}, argv=(marker, f"{timeout_s:g}"))
    answers = []
    for line in run.stdout.splitlines():
        if line.startswith(marker):
            try:
                answers.append(json.loads(line[len(marker):]))
            except ValueError:
                continue
    if answers and answers[0].get("loaded") is False:
        return [CallOutcome("unloadable", str(answers[0].get("error")))] * len(calls)
    outcomes = [CallOutcome(str(a.get("status")), str(a.get("value")), a.get("matches")) for a in answers]
    if len(outcomes) < len(calls):  # the process died (memory, a signal, the wall timeout) on the next call
        why = ("the whole run timed out" if run.timed_out
               else _death(run.returncode, run.stderr))
        outcomes.append(CallOutcome("timeout" if run.timed_out else "crashed", why))
        outcomes += [CallOutcome("crashed", "not run: an earlier call ended the process")] * (
            len(calls) - len(outcomes))
    return outcomes[:len(calls)]


async def call_function(module_source: str, function_name: str, args_literal: str, timeout_s: float = 5.0,
                        expected_literal: str | None = None, memory_mb: int = DEFAULT_MEMORY_MB,
                        module_path: str | None = None) -> CallOutcome:
    """One call of :func:`call_functions`: ``function_name(args_literal)`` on the module, its repr or its error."""
    (outcome,) = await call_functions(module_source, function_name, [(args_literal, expected_literal)], timeout_s,
                                      memory_mb, module_path)
    return outcome


def _death(returncode: int | None, stderr: str) -> str:
    tail = (stderr.strip().splitlines() or [""])[-1][:200]
    if returncode is not None and returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by {name}" + (f": {tail}" if tail else "")
    return f"exit status {returncode}" + (f": {tail}" if tail else "")
