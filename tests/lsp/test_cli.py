"""The ``metagpt-lsp`` command: ``--version``, serving over TCP and WebSocket, ``--log-file``, nothing but protocol on
stdout in stdio mode, and ``metagpt-lsp check`` exit codes and output."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from importlib.metadata import version
from pathlib import Path

import pytest
from lsprotocol import types

from metagpt_lsp.testing.lsp_support import WAIT_S, EditorClient, initialize_params, make_editor_client
from metagpt_lsp.testing.raw_jsonrpc import RawServer, frame
from metagpt_lsp.testing.scripted_editor import NO_FINDINGS, scripted_llm_process, server_environment_for

CLI = [sys.executable, "-m", "metagpt_lsp.server"]
SCRIPT = Path(sys.executable).with_name("metagpt-lsp")
BROKEN = "def f(x)\n    return x\n"


def test_version_from_the_script_and_the_module():
    expected = f"metagpt-lsp {version('metagpt-lsp')}"
    for command in ([str(SCRIPT)], CLI):
        done = subprocess.run([*command, "--version"], capture_output=True, text=True, timeout=WAIT_S)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == expected


def test_bad_port_is_a_usage_error():
    done = subprocess.run([*CLI, "--tcp", "--port", "70000"], capture_output=True, text=True, timeout=WAIT_S)
    assert done.returncode == 2
    assert "--port must be between 1 and 65535" in done.stderr


# -- TCP and WebSocket ----------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.asynccontextmanager
async def listening_server(transport: str) -> AsyncIterator[tuple[asyncio.subprocess.Process, int]]:
    """The server started with ``--tcp``/``--ws`` on a free port, once its log says it is serving."""
    port = _free_port()
    process = await asyncio.create_subprocess_exec(
        *CLI, transport, "--host", "127.0.0.1", "--port", str(port),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert process.stderr is not None

    async def serving() -> None:
        while line := await process.stderr.readline():
            if re.search(rb"Serving on .*\b%d\b" % port, line):
                return
        raise AssertionError("the server exited before it said it was serving")

    drain = None
    try:
        await asyncio.wait_for(serving(), WAIT_S)
        drain = asyncio.create_task(process.stderr.read())  # keep the pipe from filling up
        yield process, port
        assert await asyncio.wait_for(process.wait(), WAIT_S) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        if drain is not None:
            await drain


async def _initialize_and_check(client: EditorClient) -> None:
    result = await asyncio.wait_for(client.initialize_session(initialize_params("visual-studio-code")), WAIT_S)
    assert result.server_info is not None and result.server_info.name == "metagpt-lsp"
    client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
        uri="file:///net/f.py", language_id="python", version=1, text=BROKEN)))
    published = await client.publish_for("file:///net/f.py", 1)
    assert [d.message for d in published.diagnostics] == ['expected ":" after ")"']
    await asyncio.wait_for(client.shutdown_async(None), WAIT_S)
    client.exit(None)


async def test_tcp_serves_a_pygls_client():
    async with listening_server("--tcp") as (_process, port):
        client = make_editor_client()
        await client.start_tcp("127.0.0.1", port)
        try:
            await _initialize_and_check(client)
        finally:
            await asyncio.wait_for(client.stop(), WAIT_S)


async def test_websocket_serves_a_pygls_client():
    async with listening_server("--ws") as (_process, port):
        client = make_editor_client()
        await client.start_ws("127.0.0.1", port)
        try:
            await _initialize_and_check(client)
        finally:
            await asyncio.wait_for(client.stop(), WAIT_S)


# -- stdio: logs go to stderr and --log-file, never to stdout -------------------------------------------------

async def test_stdout_carries_only_lsp_frames_and_the_log_file_gets_the_log(tmp_path: Path):
    log_file = tmp_path / "server.log"
    server = await RawServer.start("--log-level", "debug", "--log-file", str(log_file))
    await server.initialize({"window": {"showMessage": {}}})
    await server.notify(types.TEXT_DOCUMENT_DID_OPEN, {"textDocument": {
        "uri": "file:///stdio/f.py", "languageId": "python", "version": 1, "text": BROKEN}})
    await server.notify(types.TEXT_DOCUMENT_DID_OPEN, {"textDocument": {
        "uri": "file:///stdio/notes.xyz", "languageId": "klingon", "version": 1, "text": "hello"}})
    await server.send(frame(body=b"{not json"))  # makes pygls log a traceback: it must go to stderr
    await server.request(2, types.TEXT_DOCUMENT_DIAGNOSTIC, {"textDocument": {"uri": "file:///stdio/f.py"}})
    assert len((await server.response(2))["result"]["items"]) == 1
    assert await server.stop() == 0

    # Everything after the last frame read must also be frames, up to the end of the stream.
    while await server.read_message() is not None:
        pass
    assert server.process.stdout is not None and await server.process.stdout.read() == b""
    assert server.stdout_bytes.startswith(b"Content-Length: ")
    methods = {message.get("method") for message in server.received}
    assert types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS in methods and types.WINDOW_LOG_MESSAGE in methods

    stderr = server.stderr.decode()  # read all along by RawServer, so a chatty server never blocks
    logged = log_file.read_text(encoding="utf-8")
    for text in ("initialized for", "'klingon' has no grammar here", "not valid JSON"):
        assert text in stderr
        assert text in logged
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (INFO|WARNING|ERROR) metagpt_lsp\.", logged, re.MULTILINE)


# -- metagpt-lsp check ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def scripted_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A scripted LLM (a process of its own: the tests below block on the CLI) that finds nothing in any review."""
    with scripted_llm_process({"default_reply": NO_FINDINGS}, tmp_path_factory.mktemp("llm")) as base_url:
        yield base_url


@pytest.fixture
def run_check(scripted_endpoint: str, tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``metagpt-lsp check`` whose server asks the scripted LLM (never the embedded model) and keeps its review cache
    in the test's temp dir (never the user's)."""
    environment = server_environment_for(scripted_endpoint, tmp_path / "review-cache.sqlite3")

    def run(cwd: Path, *paths: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(SCRIPT), "check", *paths], cwd=cwd, capture_output=True, text=True,
                              timeout=WAIT_S * 4, env=environment)

    return run


@pytest.fixture
def project(tmp_path: Path) -> Path:
    tmp_path = tmp_path / "project"
    tmp_path.mkdir()
    (tmp_path / "bad.py").write_text(BROKEN, encoding="utf-8")
    (tmp_path / "good.py").write_text("def f(x):\n    return x\n", encoding="utf-8")
    web = tmp_path / "web"
    web.mkdir()
    (web / "app.js").write_text("function f( {\n", encoding="utf-8")
    (web / "README.txt").write_text("def f(: not code\n", encoding="utf-8")
    (tmp_path / "latin1.py").write_bytes("s = 'caf\xe9'\n".encode("latin-1"))
    return tmp_path


def test_check_reports_syntax_errors_and_exits_1(project: Path, run_check):
    done = run_check(project, "bad.py", "good.py")
    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines() == ['bad.py:1:8: error: expected ":" after ")" [metagpt-lsp]']
    assert "2 file(s) checked, 1 finding(s)" in done.stderr


def test_check_of_clean_files_exits_0_and_prints_nothing(project: Path, run_check):
    done = run_check(project, "good.py")
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert "1 file(s) checked, 0 finding(s)" in done.stderr


def test_check_walks_folders_for_known_languages_only(project: Path, run_check):
    done = run_check(project, "web")
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert lines and all(line.startswith(str(Path("web") / "app.js") + ":1:") for line in lines)
    assert "1 file(s) checked" in done.stderr


def test_check_exits_2_when_a_path_cannot_be_checked(project: Path, run_check):
    missing = run_check(project, "nowhere.py")
    assert missing.returncode == 2
    assert "nowhere.py: no such file or folder" in missing.stderr

    unreadable = run_check(project, "latin1.py", "good.py")
    assert unreadable.returncode == 2, unreadable.stderr
    assert "latin1.py" in unreadable.stderr and "UTF-8" in unreadable.stderr
