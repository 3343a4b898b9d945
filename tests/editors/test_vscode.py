"""The VS Code extension in a real VS Code: code-server 4.139.1 (VS Code 1.139.1) with the extension installed from the
.vsix that `npm run package` builds, against the real server and the scripted LLM (tests/editors/vscode/script.json).

- The extension-host suite (tests/editors/vscode/suite/index.js) runs inside VS Code's real extension host, opened in
  headless Chromium: the server starts, review diagnostics appear after a save (with progress in the status bar), the
  "Explain and fix" quick fix resolves and applies, an inline suggestion is accepted into the document, a multi-line
  one is typed through and accepted a word, a line and the rest at a time (VS Code's own commands). The extension
  host exits 0 whatever happens, so the suite writes a verdict file and each test here asserts on its part.
- The UI smoke test opens code-server itself in Chromium, opens a file, breaks a function and saves, waits for the
  review's error in the Problems count and the editor; reads a multi-line ghost text off the screen, types through it
  and accepts it with Tab; and saves a screenshot to .artifacts/vscode-ui-smoke.png.

tests/editors/vscode/setup.sh installs what is missing (Debian chromium and libkrb5-dev, Node 24, code-server in
~/.cache/metagpt-lsp-test, playwright-core, the .vsix); when that fails, these tests fail — they never skip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from metagpt_lsp.testing.sample_module import SMALL_STATS as STATS
from metagpt_lsp.testing.scripted_llm import ScriptedLlm, load_script, running_in_thread

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "tests" / "editors" / "vscode"
ARTIFACTS = ROOT / ".artifacts"
EXTENSION_ID = "metagpt-lsp.metagpt-lsp"
START_S = 120.0
"""Upper bound for a process to say it is ready (a cold code-server on two busy cores takes a few seconds)."""
BROWSER_S = 300.0

pytestmark = pytest.mark.timeout(1200)  # the first test also pays for a cold install (about 3 minutes)

PALINDROME = 'def is_palindrome(word):\n    """True when word reads the same backwards."""\n    \n'
AREA = 'def area(width, height):\n    """The area of a width by height rectangle."""\n    pass\n'
STUB_LINE = "def perimeter(radius):\n    "
CIRCLE = "import math\n\n\n" + STUB_LINE + "\n"
"""A stub whose body line holds its indentation only: at its end the scripted model suggests OFFER (script.json)."""
OFFER = "total = 2 * math.pi\n    return total * radius"


@dataclass(frozen=True)
class Tools:
    node: str
    code_server: str
    vsix: str
    chromium: str
    driver_dir: str

    @property
    def entry(self) -> str:
        return str(Path(self.code_server) / "out" / "node" / "entry.js")

    @property
    def server_main(self) -> str:
        return str(Path(self.code_server) / "lib" / "vscode" / "out" / "server-main.js")


@pytest.fixture(scope="module")
def tools() -> Tools:
    result = subprocess.run(["bash", str(HERE / "setup.sh")], capture_output=True, text=True, timeout=1100,
                            check=False)
    if result.returncode != 0:
        pytest.fail(f"tests/editors/vscode/setup.sh failed (exit {result.returncode}):\n{result.stderr[-4000:]}")
    return Tools(**json.loads(result.stdout.strip().splitlines()[-1]))


class Started:
    """A child process in its own process group whose output goes to a log file; ``ready`` is the first match."""

    def __init__(self, command: list[str], env: dict[str, str], ready: str, log: Path) -> None:
        self.log = log
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, text=True, start_new_session=True)
        self._pattern = re.compile(ready)
        self._matched = threading.Event()
        self.match: re.Match[str] | None = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        with self.log.open("w", encoding="utf-8") as out:
            for line in self.process.stdout:
                out.write(line)
                out.flush()
                if self.match is None and (match := self._pattern.search(line)):
                    self.match = match
                    self._matched.set()
        self._matched.set()  # the process ended: no match will come

    def wait_ready(self, timeout: float = START_S) -> re.Match[str]:
        self._matched.wait(timeout)
        if self.match is None:
            self.stop()
            raise AssertionError(f"{self.process.args[:2]} did not become ready; its output:\n"
                                 f"{self.log.read_text(encoding='utf-8')[-3000:]}")
        return self.match

    def stop(self) -> None:
        """End the whole process group (code-server leaves a file watcher and the language server behind)."""
        for signum, wait_s in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.process.pid, signum)
            except ProcessLookupError:
                break
            try:
                self.process.wait(wait_s)
                break
            except subprocess.TimeoutExpired:
                continue
        self._reader.join(5)


@contextmanager
def started(command: list[str], env: dict[str, str], ready: str, log: Path) -> Iterator[Started]:
    child = Started(command, env, ready, log)
    try:
        child.wait_ready()
        yield child
    finally:
        child.stop()


@pytest.fixture(scope="module")
def scripted_llm() -> Iterator[ScriptedLlm]:
    """The scripted OpenAI-compatible server (tests/editors/vscode/script.json) in a thread of this process: the
    editor's language server reaches it over HTTP, and the tests read the requests it received."""
    with running_in_thread(ScriptedLlm(**load_script(str(HERE / "script.json")))) as server:
        yield server


@pytest.fixture(scope="module")
def llm_url(scripted_llm: ScriptedLlm) -> str:
    return scripted_llm.base_url


def make_workspace(folder: Path, llm_url: str, server_log: Path) -> Path:
    """A git repository whose HEAD has a correct stats.py and stubs in palindrome.py and area.py; its settings point the
    extension at the project's server (logging to ``server_log``) and at the scripted LLM (settings win over the
    environment)."""
    folder.mkdir(parents=True)
    (folder / "stats.py").write_text(STATS, encoding="utf-8")
    (folder / "palindrome.py").write_text(PALINDROME, encoding="utf-8")
    (folder / "area.py").write_text(AREA, encoding="utf-8")
    (folder / "circle.py").write_text(CIRCLE, encoding="utf-8")
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "init", "-q", str(folder)], check=True)
    subprocess.run([*git, "-C", str(folder), "add", "."], check=True)
    subprocess.run([*git, "-C", str(folder), "commit", "-qm", "start"], check=True)
    (folder / ".vscode").mkdir()
    settings = {"metagptLsp.server.path": str(Path(sys.executable).parent / "metagpt-lsp"),
                "metagptLsp.server.args": ["--log-file", str(server_log), "--log-level", "debug"],
                "metagptLsp.llm.baseUrl": llm_url,
                # The review on save may run the claimed call (the extension says the workspace is trusted).
                "metagptLsp.team.runCode": "onSaveToo"}
    (folder / ".vscode" / "settings.json").write_text(json.dumps(settings, indent=2), encoding="utf-8")
    return folder


def editor_env(tmp: Path, llm_url: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ, OPENAI_BASE_URL=llm_url, OPENAI_API_KEY="sk-scripted",
               METAGPT_LSP_REVIEW_CACHE=str(tmp / "review-cache.sqlite3"), **extra)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def install_vsix(tools: Tools, tmp: Path) -> Path:
    """`code-server --install-extension` the built .vsix; returns the folder it was unpacked to."""
    extensions = tmp / "extensions"
    config = tmp / "code-server.yaml"
    config.write_text("auth: none\ncert: false\n", encoding="utf-8")
    result = subprocess.run([tools.node, tools.entry, "--config", str(config), "--user-data-dir", str(tmp / "user"),
                             "--extensions-dir", str(extensions), "--install-extension", tools.vsix],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0 and "successfully installed" in result.stdout, result.stdout + result.stderr
    [unpacked] = [path for path in extensions.iterdir() if path.name.startswith(EXTENSION_ID)]
    return unpacked


def run_browser(tools: Tools, *args: str) -> subprocess.CompletedProcess[str]:
    """tests/editors/vscode/browser.js in headless Chromium (see its docstring for the modes)."""
    env = dict(os.environ, CHROMIUM=tools.chromium, METAGPT_BROWSER_DEADLINE_MS=str(int(BROWSER_S * 1000)))
    return subprocess.run([tools.node, str(HERE / "browser.js"), *args], capture_output=True, text=True,
                          timeout=BROWSER_S + 60, env=env, check=False)


def keep_artifacts(*files: Path, folder: str = "vscode") -> None:
    target = ARTIFACTS / folder
    target.mkdir(parents=True, exist_ok=True)
    for file in files:
        if file.exists():
            shutil.copy(file, target / file.name)


# -- the extension-host suite -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def verdict(tools: Tools, llm_url: str, tmp_path_factory) -> dict:
    """Run tests/editors/vscode/suite in VS Code's extension host (VS Code's server from the code-server package, opened
    in headless Chromium with an extension-test payload) and return the verdict file it writes."""
    tmp = tmp_path_factory.mktemp("vscode-suite")
    extension = install_vsix(tools, tmp)
    lsp_log = tmp / "metagpt-lsp-suite.log"
    workspace = make_workspace(tmp / "workspace", llm_url, lsp_log)
    verdict_file = tmp / "verdict.json"
    env = editor_env(tmp, llm_url, METAGPT_VSCODE_VERDICT=str(verdict_file), METAGPT_VSCODE_WORKSPACE=str(workspace))
    server = [tools.node, tools.server_main, "--host", "127.0.0.1", "--port", "0", "--without-connection-token",
              "--accept-server-license-terms", "--enable-smoke-test-driver", "--disable-telemetry",
              "--user-data-dir", str(tmp / "server-user"), "--server-data-dir", str(tmp / "server-data"),
              "--extensions-dir", str(tmp / "no-extensions")]
    server_log, console_log = tmp / "vscode-server.log", tmp / "browser-console.log"
    try:
        with started(server, env, r"Extension host agent listening on (\d+)", server_log) as vscode_server:
            port = vscode_server.match.group(1)
            remote = f"vscode-remote://127.0.0.1:{port}"
            payload = [["extensionDevelopmentPath", f"{remote}{extension}"],
                       ["extensionTestsPath", f"{remote}{HERE / 'suite' / 'index.js'}"]]
            url = (f"http://127.0.0.1:{port}/?folder={urllib.parse.quote(str(workspace))}"
                   f"&payload={urllib.parse.quote(json.dumps(payload))}")
            browser = run_browser(tools, "suite", url, str(verdict_file), str(console_log))
    finally:
        keep_artifacts(server_log, console_log, verdict_file, lsp_log)
    assert verdict_file.exists(), (f"the extension-host suite wrote no verdict (browser exit {browser.returncode}):\n"
                                   f"{browser.stderr[-3000:]}\nsee .artifacts/vscode/")
    result = json.loads(verdict_file.read_text(encoding="utf-8"))
    result["serverLog"] = lsp_log.read_text(encoding="utf-8") if lsp_log.exists() else ""
    return result


def assert_passed(verdict: dict, name: str) -> None:
    results = {result["name"]: result for result in verdict["results"]}
    log = "\n".join(verdict.get("log", []))
    if "setup" in results:
        pytest.fail(f"the suite could not start: {results['setup']['error']}\n{log}")
    assert name in results, f"the suite did not run {name!r}; it ran {sorted(results)}"
    assert results[name]["ok"], f"{name}: {results[name]['error']}\n{log}"


def test_the_extension_from_the_vsix_starts_the_server_with_the_workspace_settings(verdict):
    assert_passed(verdict, "the extension starts the server from the .vsix with the workspace settings")
    refused = [line for line in verdict["serverLog"].splitlines() if "Setting " in line or "unknown setting" in line]
    assert not refused, "the server refused settings the extension sent:\n" + "\n".join(refused)


def test_review_diagnostics_appear_after_save_with_progress_in_the_status_bar(verdict):
    assert_passed(verdict, "review diagnostics appear after save, with progress in the status bar")


def test_the_explain_and_fix_quick_fix_resolves_and_applies(verdict):
    assert_passed(verdict, "the Explain and fix quick fix resolves and applies")


def test_an_inline_suggestion_is_accepted_into_the_document(verdict):
    assert_passed(verdict, "an inline suggestion is offered and accepted into the document")


def test_a_multi_line_suggestion_is_typed_through_and_accepted_a_word_a_line_and_the_rest_at_a_time(
        verdict, scripted_llm):
    assert_passed(verdict,
                  "a multi-line suggestion is typed through, then accepted a word, a line and the rest at a time")
    # The model was asked where the suggestion was made, never inside it: typing through it and each accepted part
    # were answered from the server's cache.
    befores = [request.prompt.split("<|fim_suffix|>")[0] for request in scripted_llm.text_completions]
    assert any(before.endswith(STUB_LINE) for before in befores), befores
    inside = [before[-60:] for before in befores
              if any(before.endswith(STUB_LINE + OFFER[:typed]) for typed in range(1, len(OFFER)))]
    assert inside == [], "the model was asked again inside the suggestion"


def test_palette_explain_and_fix_at_cursor_fixes_the_document(verdict):
    assert_passed(verdict, "palette: Explain and Fix at Cursor fixes the document")


def test_palette_generate_at_cursor_fills_a_stub(verdict):
    assert_passed(verdict, "palette: Generate Code at Cursor fills a stub")


def test_palette_trace_and_team_graph_open_documents(verdict):
    assert_passed(verdict, "palette: Show Trace and Show Team Graph open documents")


def test_a_missing_server_is_reported_and_fixing_the_setting_restarts_it(verdict):
    assert_passed(verdict, "a server path that does not exist is reported, and fixing it restarts the server")


# -- the UI smoke test --------------------------------------------------------------------------------------------

def test_code_server_ui_shows_the_review_warning_after_save_and_saves_a_screenshot(tools, llm_url, tmp_path):
    install_vsix(tools, tmp_path)
    lsp_log = tmp_path / "metagpt-lsp-smoke.log"
    workspace = make_workspace(tmp_path / "workspace", llm_url, lsp_log)
    screenshot = ARTIFACTS / "vscode-ui-smoke.png"
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot.unlink(missing_ok=True)
    command = [tools.node, tools.entry, "--config", str(tmp_path / "code-server.yaml"), "--auth", "none",
               "--bind-addr", "127.0.0.1:0", "--disable-telemetry", "--disable-update-check",
               "--disable-workspace-trust", "--user-data-dir", str(tmp_path / "user"),
               "--extensions-dir", str(tmp_path / "extensions"), str(workspace)]
    log = tmp_path / "code-server.log"
    try:
        with started(command, editor_env(tmp_path, llm_url), r"HTTP server listening on (http://\S+?)/?$",
                     log) as code_server:
            url = f"{code_server.match.group(1)}/?folder={urllib.parse.quote(str(workspace))}"
            browser = run_browser(tools, "smoke", url, str(screenshot))
    finally:
        keep_artifacts(log, lsp_log)
    assert browser.stdout.strip(), f"the browser driver printed no report:\n{browser.stderr[-3000:]}"
    report = json.loads(browser.stdout.strip().splitlines()[-1])
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", "no screenshot saved"
    assert report["problems"] == [] and browser.returncode == 0, f"{report}\n{browser.stderr[-2000:]}"
    assert report["workbench"] and "stats" in report["editorTab"]
    assert report["statusItem"] == "metagpt", report
    assert report["problemsItem"].split()[:2] == ["0", "1"], \
        f"one warning (the finding confirmed by running it in a trusted workspace) in the Problems count: {report}"
    assert report["squiggle"], report
    rest = ["    return total * radius"]
    assert report["ghost"] == {"shown": {"inline": "total = 2 * math.pi", "lines": rest},
                               "typedThrough": {"inline": "al = 2 * math.pi", "lines": rest}, "saved": True}, \
        f"the multi-line suggestion is shown whole, then its rest after typing its first characters: {report}"
    assert "def perimeter(radius):\n    total = 2 * math.pi\n    return total * radius\n" in \
        (workspace / "circle.py").read_text(encoding="utf-8"), "Tab accepted the whole suggestion"
