"""Real Emacs with eglot, as Debian ships them (``emacs-nox`` 28.2, ``elpa-eglot`` 1.9), against the real server and
the scripted LLM over real HTTP.

Each scenario runs ``emacs -nw -Q -l tests/editors/emacs/session.el VERDICT DOCS FILE SCENARIO`` in a pseudo-terminal
(``setsid --ctty`` makes it Emacs's /dev/tty): a terminal Emacs, so that eglot works as it does for a user (idle timers
send didChange, Flymake shows the diagnostics, eglot asks before a server edit). The drive is a generator stepped by a
timer, so Emacs waits idle in its own command loop between steps. The drive script evaluates the configuration of
docs/editors-emacs-helix.md as written, then does what a user would: opens a file of a git repository (eglot-ensure
starts the server), types, saves, presses the documented keys (``C-c m s`` status, ``C-c m a`` / ``C-c m f`` code
actions), picks "Explain and fix" from eglot's menu and answers eglot's "Server wants to edit ... Proceed?". It waits on
events, writes what it saw as JSON, and ends with ``eglot-shutdown``. This module asserts on the verdict, and that no
process of the run outlives it.

Eglot 1.9 does not resolve code actions and waits at most 10 s for a request: "Explain and fix" arrives as a
command, and the edit as ``workspace/applyEdit``.

tests/editors/emacs/setup.sh installs the Debian packages when they are missing (as root; otherwise it says what to
install); when that fails, these tests fail — they never skip.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import struct
import subprocess
import sys
import termios
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from metagpt_lsp.testing.sample_module import SMALL_STATS as STATS

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "tests" / "editors" / "emacs"
DOCS = ROOT / "docs" / "editors-emacs-helix.md"
RUN_BOUND_S = 300
"""The drive script's own bound on a whole run (it then writes which step was waiting); the process gets more."""

pytestmark = pytest.mark.timeout(900)

BROKEN = STATS.replace("return total / len(xs)\n", "return total / len(xs) - 1\n")
FIXED_MEAN = 'def mean(xs):\n    """The average of xs."""\n    total = sum(xs)\n    return total / len(xs)\n'
FINDING = "Off by one: the average is lowered by 1."
AGREED = "review and diagnosis agree: `mean([2, 4])` would give 2.0, expected 3.0 (not run)"
"""The evidence the message carries: diagnosis backs the finding; nothing runs on save by default."""
CAUSE = "It subtracts 1 from the average."
MODEL = "emacs-test-model"  # set by session.el through eglot-workspace-configuration
SLOWER_THAN_EGLOT_S = 12.0  # eglot 1.9 gives up on a request after 10 s (jsonrpc-default-request-timeout)

REVIEW = {"last_user": "Review this code for bugs", "reply": json.dumps(
    {"findings": [{"quote": "return total / len(xs) - 1", "problem": FINDING, "severity": "error"}]})}
CHALLENGE = {"last_user": "A reviewer claims this line is a bug", "reply": json.dumps(
    {"call": "mean([2, 4])", "expected": "3.0", "actual": "2.0", "real": True})}
DIAGNOSIS = {"last_user": "What causes it", "reply": json.dumps({"cause": CAUSE, "line": "return total / len(xs) - 1"})}
REWRITE = {"last_user": "Rewrite this code", "reply": f"```python\n{FIXED_MEAN}```"}
SCRIPTS = {
    "fix": [REVIEW, CHALLENGE, DIAGNOSIS, REWRITE],
    "decline": [REVIEW, CHALLENGE, DIAGNOSIS, REWRITE],
    "slow": [REVIEW, CHALLENGE, DIAGNOSIS, {**REWRITE, "latency_s": SLOWER_THAN_EGLOT_S}],
    "inflight": [REVIEW, CHALLENGE, DIAGNOSIS, {"last_user": "Rewrite this code", "fault": "hang"}],
}


@dataclass(frozen=True)
class Tools:
    emacs: str
    emacs_version: str
    eglot_version: str
    eglot_dir: str


@pytest.fixture(scope="module")
def tools() -> Tools:
    result = subprocess.run(["bash", str(HERE / "setup.sh")], capture_output=True, text=True, timeout=600,
                            check=False)
    if result.returncode != 0:
        pytest.fail(f"tests/editors/emacs/setup.sh failed (exit {result.returncode}):\n{result.stderr[-4000:]}")
    return Tools(**json.loads(result.stdout.strip().splitlines()[-1]))


class ScriptedLlm:
    """tests/scripted_llm.py as its own process (the server reaches it over HTTP)."""

    def __init__(self, rules: list[dict], directory: Path) -> None:
        script = directory / "script.json"
        script.write_text(json.dumps({"default_reply": '{"findings": []}', "rules": rules}))
        scripted = ROOT / "tests" / "support" / "scripted_llm.py"
        self.process = subprocess.Popen([sys.executable, str(scripted), "--port", "0", "--script", str(script)],
                                        stdout=subprocess.PIPE, text=True)
        ready = self.process.stdout.readline()
        if not ready.startswith("READY "):
            self.stop()
            raise AssertionError(f"the scripted LLM server did not start: {ready!r}")
        self.base_url = ready.split()[1]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def git_repo(directory: Path) -> Path:
    """A git repository whose HEAD has a correct stats.py."""
    repo = directory / "repo"
    repo.mkdir()
    (repo / "stats.py").write_text(STATS)
    for command in (["init", "-q"], ["config", "user.email", "test@example.com"], ["config", "user.name", "Test"],
                    ["add", "stats.py"], ["commit", "-q", "-m", "stats"]):
        subprocess.run(["git", *command], cwd=repo, check=True, capture_output=True)
    return repo


def processes_with(marker: str) -> list[psutil.Process]:
    """Every live process whose environment carries the run's marker (Emacs, the server and anything they start)."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get("METAGPT_TEST_EMACS_RUN") == marker and \
                    process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def run_emacs(tools: Tools, scenario: str, directory: Path) -> dict:
    """One scenario in a terminal Emacs; returns the verdict (with ``exit`` and ``leftovers`` added)."""
    directory.mkdir(parents=True, exist_ok=True)
    repo = git_repo(directory)
    llm = ScriptedLlm(SCRIPTS[scenario], directory)
    home = directory / "home"
    (home / ".emacs.d").mkdir(parents=True)
    marker = uuid.uuid4().hex
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("EMACS", "XDG_", "OPENAI_", "METAGPT_LSP_", "INSIDE_EMACS"))}
    env.update({
        "HOME": str(home), "TERM": "xterm", "COLUMNS": "120", "LINES": "40", "LANG": "C.UTF-8",
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        "OPENAI_BASE_URL": llm.base_url, "METAGPT_LSP_REVIEW_CACHE": str(directory / "review-cache.sqlite3"),
        "METAGPT_TEST_EMACS_RUN": marker, "METAGPT_TEST_EMACS_BOUND_S": str(RUN_BOUND_S),
    })
    verdict_path = directory / "verdict.json"
    # setsid --ctty: a new session whose controlling terminal (Emacs's /dev/tty) is the pty on stdin; it execs Emacs.
    command = ["setsid", "--ctty", tools.emacs, "-nw", "-Q", "-l", str(HERE / "session.el"), str(verdict_path),
               str(DOCS), str(repo / "stats.py"), scenario]
    primary, secondary = os.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    screen = bytearray()

    def drain() -> None:  # the terminal's output must be read, or Emacs blocks writing to it
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:
                return
            if not chunk:
                return
            screen.extend(chunk)
            del screen[:-20000]

    try:
        process = subprocess.Popen(command, env=env, cwd=repo, stdin=secondary, stdout=secondary,
                                   stderr=secondary)
        os.close(secondary)
        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        try:
            exit_code = process.wait(timeout=RUN_BOUND_S + 120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
            exit_code = None
        reader.join(timeout=10)
    finally:
        os.close(primary)
        leftovers = []
        for leftover in processes_with(marker):
            try:
                leftovers.append(f"{leftover.pid} {' '.join(leftover.cmdline())}")
                leftover.kill()
            except psutil.Error:
                continue
        llm.stop()
    evidence = f"exit {exit_code}; the terminal's last output:\n{bytes(screen[-3000:]).decode(errors='replace')}"
    assert verdict_path.exists(), f"the drive script wrote no verdict\n{evidence}"
    verdict = json.loads(verdict_path.read_text())
    verdict["exit"] = exit_code
    verdict["leftovers"] = leftovers
    verdict["_evidence"] = (f"{evidence}\nsteps: {verdict.get('steps')}\nevents: {verdict.get('events')}\n"
                            f"server stderr:\n{verdict.get('stderr')}")
    return verdict


def events(verdict: dict, kind: str) -> list[list]:
    return [event for event in verdict["events"] if event[1] == kind]


def messages(verdict: dict) -> list[dict]:
    return [event[2] for event in events(verdict, "showMessage")]


def assert_ran(verdict: dict) -> None:
    """The drive script got to its end, and the shutdown left nothing behind (f)."""
    assert verdict["ok"] is True and verdict["exit"] == 0, f"{verdict['reason']}\n{verdict['_evidence']}"
    assert_shut_down(verdict)
    errors = [line for line in verdict["stderr"].splitlines() if " ERROR " in line or line.startswith("Traceback")]
    assert errors == [], f"the server logged errors: {errors}\n{verdict['stderr'][-4000:]}"


def assert_shut_down(verdict: dict) -> None:
    (shutdown,) = verdict["shutdowns"]
    assert shutdown["error"] is None, f"eglot-shutdown failed: {shutdown['error']}\n{verdict['_evidence']}"
    assert verdict["leftovers"] == [], f"processes outlived Emacs: {verdict['leftovers']}"
    assert not psutil.pid_exists(shutdown["pid"]) or \
        psutil.Process(shutdown["pid"]).status() == psutil.STATUS_ZOMBIE, "the server process is still running"


def assert_no_error_shown(verdict: dict) -> None:
    shown = [m for m in messages(verdict) if m["type"] == 1]
    assert shown == [], f"errors popped up: {shown}\n{verdict['_evidence']}"
    failed = events(verdict, "command-error")
    assert failed == [], f"a command failed: {failed}\n{verdict['_evidence']}"
    assert events(verdict, "unexpected-question") == [], "eglot asked something a user would not expect"
    logged = events(verdict, "logMessage-error")
    assert logged == [], f"errors went to the editor's log: {logged}"


def assert_reviewed(verdict: dict) -> None:
    (finding,) = verdict["review"]
    # Agreed by review and diagnosis, not run (on save nothing runs by default): a Flymake note, not an error.
    assert finding == {"text": f"metagpt-review [review]: {FINDING} ({AGREED})", "line": 7, "type": "eglot-note"}, \
        "the review's finding sits on the broken line"
    assert verdict["broken_text"] == BROKEN


@pytest.fixture(scope="module")
def fix_run(tools, tmp_path_factory) -> dict:
    return run_emacs(tools, "fix", tmp_path_factory.mktemp("emacs-fix"))


def test_the_documented_configuration_starts_the_server_with_its_settings(tools, fix_run):
    assert (tools.emacs_version, tools.eglot_version) == ("28.2", "1.9"), "Debian 12's emacs-nox and elpa-eglot"
    assert fix_run["emacs_version"] == "28.2" and fix_run["eglot_version"] == "1.9"
    assert fix_run["eglot_library"].startswith(tools.eglot_dir), "eglot comes from Debian's elpa-eglot"
    assert_ran(fix_run)
    assert fix_run["major_mode"] == "python-mode"
    assert fix_run["server_program"] == ["metagpt-lsp"], "eglot-server-programs from the docs"
    assert fix_run["status"].startswith(f"metagpt-lsp: {MODEL} at http://127.0.0.1:"), \
        "C-c m s answers, and llm.model from eglot-workspace-configuration reached the server"


def test_a_syntax_error_is_a_flymake_diagnostic_that_goes_when_fixed(fix_run):
    assert_ran(fix_run)
    (syntax,) = fix_run["syntax"]
    assert syntax["text"].startswith("metagpt-lsp [syntax]: "), syntax
    assert syntax["line"] == 14 and syntax["type"] == "eglot-error", "on the typed line `def broken(:`"
    assert [step["name"] for step in fix_run["steps"]][2:4] == ["syntax diagnostic", "syntax diagnostic gone"]


def test_review_diagnostics_appear_after_a_save(fix_run):
    assert_ran(fix_run)
    assert_reviewed(fix_run)


def test_explain_and_fix_is_picked_from_the_menu_and_applied_through_the_command_path(fix_run):
    assert_ran(fix_run)
    (menu,) = events(fix_run, "menu")
    assert any(title.startswith(f"Explain and fix: {FINDING}") for title in menu[2]), \
        f"eglot's menu lists the fix for the finding: {menu[2]}"
    assert "Review mean" in menu[2]
    assert events(fix_run, "asked-to-edit") and events(fix_run, "applyEdit"), \
        "the edit came as workspace/applyEdit (eglot 1.9 does not resolve code actions)"
    assert fix_run["fixed_text"] == STATS, "the buffer holds the fixed function, the rest untouched"
    assert any(m["message"] == f"Explain and fix: {FINDING}" or FINDING in m["message"]
               for m in messages(fix_run)), "the explanation is shown"
    assert_no_error_shown(fix_run)


def test_a_fix_slower_than_eglots_10_s_timeout_still_arrives_without_an_error(tools, tmp_path):
    verdict = run_emacs(tools, "slow", tmp_path / "slow")
    assert_ran(verdict)
    assert_reviewed(verdict)
    assert verdict["fixed_text"] == STATS, "the slow fix arrived and was applied"
    assert_no_error_shown(verdict)
    (returned,) = [event for event in events(verdict, "command-returned") if event[2] == "metagpt-lsp-fix"]
    (edit,) = events(verdict, "applyEdit")
    assert returned[0] < edit[0], "the command was answered before the edit came (Emacs was not kept waiting)"


def test_declining_the_edit_changes_nothing_and_shows_no_error(tools, tmp_path):
    verdict = run_emacs(tools, "decline", tmp_path / "decline")
    assert_ran(verdict)
    assert_reviewed(verdict)
    assert [event[2] for event in events(verdict, "asked-to-edit")] == ["no"]
    assert verdict["declined_text"] == BROKEN, "nothing was applied"
    assert_no_error_shown(verdict)
    (asked,) = events(verdict, "asked-to-edit")
    told = [event[2]["message"] for event in events(verdict, "showMessage") if event[0] > asked[0]]
    assert any(re.search(r"did not apply|not applied|declined", message) for message in told), \
        f"the user is told in plain words that nothing was applied: {told}"
    assert verdict["status_after"].startswith(f"metagpt-lsp: {MODEL} at "), "the server still answers"


def test_shutdown_with_a_fix_in_flight_answers_and_leaves_no_process(tools, tmp_path):
    verdict = run_emacs(tools, "inflight", tmp_path / "inflight")
    assert_ran(verdict)
    assert ", 0 task(s) in flight" not in verdict["status_in_flight"], "the fix was still running at shutdown"
    assert_no_error_shown(verdict)
