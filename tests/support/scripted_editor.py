"""An editor session whose server talks to the scripted LLM, in a real git repository: what the editor-feature tests
share.

:func:`scripted_session` starts ``metagpt-lsp --stdio`` with ``OPENAI_BASE_URL`` pointing at a :class:`ScriptedLlm`
on 127.0.0.1 and ``METAGPT_LSP_REVIEW_CACHE`` at a file of the test's own — so no test ever starts the embedded
model or touches the user's review cache. Its client, :class:`FeatureClient`, is the pytest-lsp editor client of
:mod:`lsp_support` that also records ``$/progress`` (waiting for a progress of some title to end, without sleeping)
and answers ``workspace/applyEdit`` the way an editor does: it applies a ``TextDocumentEdit`` only to the version it
names, to its own model of the document, and sends the resulting ``didChange``.

:class:`GitProject` is a git repository in a temp dir, with commits made by the ``git`` command itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import attrs
from lsprotocol import types
from pygls.protocol import default_converter
from pytest_lsp import ClientServerConfig
from pytest_lsp.client import DEFAULT_CLIENT_FEATURES

from metagpt_lsp.testing.lsp_support import (
    SERVER_COMMAND,
    WAIT_S,
    EditorClient,
    EditorDocument,
    _recording,
    capabilities,
)
from metagpt_lsp.testing.scripted_llm import Rule, ScriptedLlm

NO_FINDINGS = json.dumps({"findings": []})
ASKS_REVIEW = "Review this code for bugs"
ASKS_CAUSE = "What causes it"
ASKS_FIX = "Rewrite this code"
ASKS_CHALLENGE = "A reviewer claims this line is a bug"
_LLM_VARIABLES = ("OPENAI_BASE_URL", "OPENAI_API_KEY", "METAGPT_LSP_MODEL", "METAGPT_LSP_REVIEW_CACHE")


def findings(*items: tuple[str, str, str]) -> str:
    """A review reply: ``(quote, problem, severity)`` per finding."""
    return json.dumps({"findings": [{"quote": q, "problem": p, "severity": s} for q, p, s in items]})


def review_rule(reply: str = NO_FINDINGS, about: str | None = None, **options: Any) -> Rule:
    """Answer review questions (about the unit whose text matches ``about``, if given) with ``reply``."""
    pattern = ASKS_REVIEW if about is None else f"(?s){ASKS_REVIEW}.*{about}"
    return Rule(reply, last_user=pattern, **options)


def review_prompts(llm: ScriptedLlm) -> list[str]:
    return [request.last_user_message for request in llm.completions if ASKS_REVIEW in request.last_user_message]


def challenge_rule(args: str = "", expected: str = "", actual: str = "", real: bool = True,
                   about: str | None = None, function: str = "f", **options: Any) -> Rule:
    """Answer diagnosis's cross-examination of a review finding (about the quoted line matching ``about``, if
    given): the call (``function`` with the literal ``args``; the name is not checked), what it should give, what
    this code gives, and whether the bug is real.
    Where code may run the call is executed, so ``actual`` must be what the code really gives for a Warning (a
    crash named in ``actual``, e.g. "ZeroDivisionError", for an Error); where nothing runs agreement makes an
    Information."""
    pattern = ASKS_CHALLENGE if about is None else f"(?s){ASKS_CHALLENGE}:\n[^\n]*{about}"
    reply = json.dumps({"call": f"{function}({args})", "expected": expected, "actual": actual, "real": real})
    return Rule(reply, last_user=pattern, **options)


def challenge_prompts(llm: ScriptedLlm) -> list[str]:
    return [request.last_user_message for request in llm.completions if ASKS_CHALLENGE in request.last_user_message]


RUNS_CODE_ON_SAVE = {"workspaceTrusted": True, "team": {"runCode": "onSaveToo"}}
"""initializationOptions of a trusted workspace whose user lets review run claimed calls on save."""


# -- a git repository -----------------------------------------------------------------------------------------------

@dataclass
class GitProject:
    root: Path

    @classmethod
    def create(cls, root: Path) -> GitProject:
        root.mkdir(parents=True, exist_ok=True)
        project = cls(root)
        project.git("init", "-q", "-b", "main")
        return project

    def git(self, *args: str) -> str:
        done = subprocess.run(["git", "-c", "user.name=Test", "-c", "user.email=test@example.com",
                               "-c", "commit.gpgsign=false", *args], cwd=self.root, capture_output=True,
                              text=True, check=True)
        return done.stdout

    def write(self, name: str, text: str) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
        return path

    def commit(self, files: dict[str, str], message: str = "add files") -> None:
        for name, text in files.items():
            self.write(name, text)
        self.git("add", *files)
        self.git("commit", "-q", "-m", message)

    def uri(self, name: str) -> str:
        return (self.root / name).resolve().as_uri()


# -- the editor -----------------------------------------------------------------------------------------------------

def index_at(text: str, position: types.Position) -> int:
    """The ``str`` index of a UTF-16 LSP position in ``text`` (the editor's side, independent of the server's)."""
    offset = 0
    for _ in range(position.line):
        newline = text.find("\n", offset)
        offset = len(text) if newline == -1 else newline + 1
    units = 0
    while units < position.character and offset < len(text) and text[offset] != "\n":
        units += 2 if ord(text[offset]) > 0xFFFF else 1
        offset += 1
    return offset


def apply_text_edits(text: str, edits: list[types.TextEdit]) -> str:
    for edit in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
        text = text[:index_at(text, edit.range.start)] + edit.new_text + text[index_at(text, edit.range.end):]
    return text


class FeatureClient(EditorClient):
    """The editor client that also records progress and applies ``workspace/applyEdit`` to its documents."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.documents: dict[str, EditorDocument] = {}
        self.applied_edits: list[types.ApplyWorkspaceEditParams] = []
        self.progress_titles: dict[Any, str] = {}
        self.edit_answer = "apply"
        self.progress_grant: asyncio.Event | None = None
        """When set, ``window/workDoneProgress/create`` is answered only once this event is set."""
        """How ``workspace/applyEdit`` is answered: ``apply``, ``decline`` (applied: false) or ``error``."""

    def track(self, document: EditorDocument) -> EditorDocument:
        self.documents[document.uri] = document
        return document

    def save(self, document: EditorDocument) -> None:
        """Write the text to its file (as an editor does before telling the server) and send ``didSave``."""
        Path(unquote(urlparse(document.uri).path)).write_bytes(document.text.encode("utf-8"))
        self.text_document_did_save(types.DidSaveTextDocumentParams(
            text_document=types.TextDocumentIdentifier(uri=document.uri)))

    def publish_mark(self) -> int:
        return len(self.seen(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS))

    async def review_published(self, uri: str, version: int, since: int = 0) -> types.PublishDiagnosticsParams:
        """The first publish (from mark ``since`` on) for ``uri`` at ``version`` that holds review diagnostics."""
        future = self.expect(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS, lambda p: p.uri == uri and p.version == version
                             and any(d.source == "metagpt-review" for d in p.diagnostics), since=since)
        try:
            return await asyncio.wait_for(future, WAIT_S)
        except TimeoutError:
            raise AssertionError(f"no review diagnostics for {uri} version {version} within {WAIT_S:g} s") from None

    # -- progress
    def on_progress(self, params: types.ProgressParams) -> None:
        value = params.value if isinstance(params.value, dict) else {}
        if value.get("kind") == "begin":
            self.progress_titles[params.token] = value.get("title", "")
        self.record(types.PROGRESS, params)

    def progress_mark(self) -> int:
        return len(self.seen(types.PROGRESS))

    async def progress_end(self, title: str, since: int = 0) -> types.ProgressParams:
        """The first ``end`` (seen from mark ``since`` on) of a progress whose title starts with ``title``."""
        future = self.expect(types.PROGRESS, lambda p: isinstance(p.value, dict) and p.value.get("kind") == "end"
                             and self.progress_titles.get(p.token, "").startswith(title), since=since)
        try:
            return await asyncio.wait_for(future, WAIT_S)
        except TimeoutError:
            raise AssertionError(f"no end of a {title!r} progress within {WAIT_S:g} s; "
                                 f"progress seen: {[p.value for p in self.seen(types.PROGRESS)]}") from None

    def progress_of(self, token: Any) -> list[dict[str, Any]]:
        return [p.value for p in self.seen(types.PROGRESS) if p.token == token]

    # -- applyEdit
    def on_apply_edit(self, params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        self.applied_edits.append(params)
        self.record(types.WORKSPACE_APPLY_EDIT, params)
        if self.edit_answer == "decline":
            return types.ApplyWorkspaceEditResult(applied=False, failure_reason="the user said no")
        if self.edit_answer == "error":
            raise ValueError("the editor could not apply the edit")
        for change in params.edit.document_changes or []:
            if not isinstance(change, types.TextDocumentEdit):
                return types.ApplyWorkspaceEditResult(applied=False, failure_reason="only text edits are expected")
            document = self.documents.get(change.text_document.uri)
            if document is None or change.text_document.version != document.version:
                return types.ApplyWorkspaceEditResult(applied=False, failure_reason="version mismatch")
            edits = [e for e in change.edits if isinstance(e, types.TextEdit)]
            new_text = apply_text_edits(document.text, edits)
            document.replace_all(self, new_text)
        return types.ApplyWorkspaceEditResult(applied=True)


def _code_action_or_command(converter: Any) -> Any:
    """lsprotocol reads any object with a ``command`` key as a ``Command`` — also a ``CodeAction`` whose ``command``
    is a Command object (as "Review <fn>" and every action for a client without resolve are). An editor tells them
    apart by the key's type (a string for a Command); so does this hook, on the test client's side only."""

    def structure(value: Any, _type: Any) -> Any:
        if isinstance(value, dict) and isinstance(value.get("command"), str):
            return converter.structure(value, types.Command)
        return converter.structure(value, types.CodeAction)

    return structure


def make_feature_client() -> FeatureClient:
    client = FeatureClient(converter_factory=default_converter)
    converter = client.protocol._converter
    converter.register_structure_hook(types.Command | types.CodeAction, _code_action_or_command(converter))
    recorded = (types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS, types.WINDOW_LOG_MESSAGE, types.WINDOW_SHOW_MESSAGE,
                types.WORKSPACE_CONFIGURATION, types.WORKSPACE_DIAGNOSTIC_REFRESH)
    for method, handler in DEFAULT_CLIENT_FEATURES.items():
        if method in (types.PROGRESS, types.WINDOW_WORK_DONE_PROGRESS_CREATE):
            continue
        client.feature(method)(_recording(method) if method in recorded else handler)

    default_progress = DEFAULT_CLIENT_FEATURES[types.PROGRESS]

    @client.feature(types.PROGRESS)
    def _progress(ls: FeatureClient, params: types.ProgressParams) -> None:
        default_progress(ls, params)  # pytest-lsp's checks: the token was created, the kind is known
        ls.on_progress(params)

    default_create = DEFAULT_CLIENT_FEATURES[types.WINDOW_WORK_DONE_PROGRESS_CREATE]

    @client.feature(types.WINDOW_WORK_DONE_PROGRESS_CREATE)
    async def _create_progress(ls: FeatureClient, params: types.WorkDoneProgressCreateParams) -> None:
        ls.record(types.WINDOW_WORK_DONE_PROGRESS_CREATE, params)
        if ls.progress_grant is not None:
            await ls.progress_grant.wait()
        return default_create(ls, params)

    @client.feature(types.WORKSPACE_APPLY_EDIT)
    def _apply_edit(ls: FeatureClient, params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        return ls.on_apply_edit(params)

    return client


def feature_capabilities(profile: str) -> types.ClientCapabilities:
    """:func:`lsp_support.capabilities` plus ``+inline`` (declares ``textDocument.inlineCompletion``),
    ``+noresolve`` (no ``codeAction.resolveSupport``) and ``+noprogress`` (no ``window.workDoneProgress``)."""
    preset, *changes = profile.split("+")
    ours = [c for c in changes if c in ("inline", "noresolve", "noprogress")]
    result = capabilities("+".join([preset, *(c for c in changes if c not in ours)]))
    text_document = result.text_document or types.TextDocumentClientCapabilities()
    for change in ours:
        if change == "inline":
            text_document = attrs.evolve(text_document, inline_completion=types.InlineCompletionClientCapabilities())
        elif change == "noresolve":
            text_document = attrs.evolve(text_document, code_action=attrs.evolve(
                text_document.code_action, resolve_support=None, data_support=False))
        elif change == "noprogress":
            result = attrs.evolve(result, window=attrs.evolve(result.window, work_done_progress=False))
    return attrs.evolve(result, text_document=text_document)


def server_environment_for(base_url: str, review_cache: Path) -> dict[str, str]:
    """The server's environment: ``base_url`` as the endpoint (so never the embedded model), a test-owned review
    cache (never the user's), and none of the user's own LLM variables."""
    environment = {key: value for key, value in os.environ.items() if key not in _LLM_VARIABLES}
    environment.update(OPENAI_BASE_URL=base_url, OPENAI_API_KEY="sk-scripted",
                       METAGPT_LSP_REVIEW_CACHE=str(review_cache))
    return environment


def server_environment(llm: ScriptedLlm, review_cache: Path) -> dict[str, str]:
    return server_environment_for(llm.base_url, review_cache)


CLI = Path(sys.executable).with_name("metagpt-lsp")
"""The installed ``metagpt-lsp`` command beside this interpreter."""


@dataclass
class Checked:
    """How a ``metagpt-lsp check`` run ended."""

    returncode: int
    stdout: str
    stderr: str


async def run_check(project: GitProject, llm: ScriptedLlm, review_cache: Path, *args: str) -> Checked:
    """Run ``metagpt-lsp check ARGS`` in the project to its end, against ``llm``, without blocking the event loop the
    scripted LLM answers on."""
    process = await asyncio.create_subprocess_exec(
        str(CLI), "check", *args, cwd=project.root, env=server_environment(llm, review_cache),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), WAIT_S * 3)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return Checked(process.returncode or 0, stdout.decode(), stderr.decode())


@contextlib.asynccontextmanager
async def scripted_session(profile: str, llm: ScriptedLlm, project: GitProject, review_cache: Path,
                           initialization_options: Any = None) -> AsyncIterator[FeatureClient]:
    """A server for ``profile`` rooted at ``project``, talking to ``llm``; shut down cleanly afterwards."""
    config = ClientServerConfig(server_command=SERVER_COMMAND, client_factory=make_feature_client,
                                server_env=server_environment(llm, review_cache))
    client = await config.start()
    assert isinstance(client, FeatureClient)
    try:
        root = project.root.resolve()
        client.initialize_result = await client.initialize_session(types.InitializeParams(
            capabilities=feature_capabilities(profile), client_info=types.ClientInfo(name=f"pytest ({profile})"),
            root_uri=root.as_uri(), workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name=root.name)],
            initialization_options=initialization_options))
        yield client
        assert not client.handler_errors, f"the client hit errors handling server messages: {client.handler_errors}"
        await asyncio.wait_for(client.shutdown_session(), WAIT_S)
    finally:
        process = client._server
        if process is not None and process.returncode is None:
            process.kill()
        await client.stop()


# -- the scripted LLM as a process, for tests that block (subprocess.run of the CLI) -----------------------------------

@contextlib.contextmanager
def scripted_llm_process(script: dict[str, Any], folder: Path) -> Iterator[str]:
    """``python tests/scripted_llm.py --script ...`` on a free port; yields its base URL, stops it afterwards."""
    script_path = folder / "scripted-llm.json"
    script_path.write_text(json.dumps(script), encoding="utf-8")
    process = subprocess.Popen([sys.executable, str(Path(__file__).with_name("scripted_llm.py")), "--port", "0",
                                "--script", str(script_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        ready = process.stdout.readline().split()
        assert ready[:1] == ["READY"], f"the scripted LLM did not start: {ready}"
        yield ready[1]
    finally:
        process.terminate()
        try:
            process.wait(WAIT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
