"""What the protocol tests share: the server command, editor capability profiles, an editor-like client that waits
for matching notifications with futures, and an editor-side text model (raw bytes on a pipe: ``raw_jsonrpc.py``).

The client is pytest-lsp's :class:`pytest_lsp.LanguageClient` (so its specification checks run) plus a record of every
``publishDiagnostics``, ``logMessage`` and ``showMessage``. ``await client.publish_for(uri, version)`` resolves on the
first publish for that document version, whether it came before or after the call — no sleeping, no polling.

:meth:`EditorClient.round_trip` is a barrier: the server handles text sync notifications in order and sends what they
cause before it reads the next message, so once the answer to a later request is in, every notification caused by
earlier messages is in too. Tests use it to assert that something did *not* happen (no push to a pull client).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import attrs
from lsprotocol import types
from pygls.protocol import default_converter
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities
from pytest_lsp.client import DEFAULT_CLIENT_FEATURES

SERVER_COMMAND = [sys.executable, "-m", "metagpt_lsp.server", "--stdio"]
SERVER_ENV = {**{key: value for key, value in os.environ.items()
                 if key not in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "METAGPT_LSP_MODEL", "METAGPT_LSP_REVIEW_CACHE")},
              "OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "METAGPT_LSP_REVIEW_CACHE": ":memory:"}
"""The server's environment in tests that script no LLM: an endpoint where nothing listens (an unexpected LLM call
fails at once instead of starting the embedded model) and a review cache in memory (never the user's)."""
WAIT_S = 30.0
"""Generous upper bound for one expected notification: the tests wait for events, this only stops a hang."""

# -- client capability profiles -----------------------------------------------------------------------------------

PUSH_PROFILES = ("visual-studio-code", "neovim@v0.11.0+push")
PULL_PROFILES = ("neovim@v0.11.0", "visual-studio-code+pull")


def capabilities(profile: str) -> types.ClientCapabilities:
    """A pytest-lsp preset, optionally changed: ``+pull`` declares ``textDocument.diagnostic``, ``+push`` removes it,
    ``+utf8`` offers only UTF-8 positions, ``+refresh`` declares ``workspace/diagnostic/refresh`` support,
    ``+noconfig`` removes ``workspace/configuration`` support."""
    preset, *changes = profile.split("+")
    result = client_capabilities(preset)
    for change in changes:
        text_document = result.text_document or types.TextDocumentClientCapabilities()
        if change == "pull":
            result = attrs.evolve(result, text_document=attrs.evolve(
                text_document, diagnostic=types.DiagnosticClientCapabilities(dynamic_registration=False)))
        elif change == "push":
            result = attrs.evolve(result, text_document=attrs.evolve(text_document, diagnostic=None))
        elif change == "utf8":
            general = result.general or types.GeneralClientCapabilities()
            result = attrs.evolve(result, general=attrs.evolve(
                general, position_encodings=[types.PositionEncodingKind.Utf8]))
        elif change == "refresh":
            workspace = result.workspace or types.WorkspaceClientCapabilities()
            result = attrs.evolve(result, workspace=attrs.evolve(
                workspace, diagnostics=types.DiagnosticWorkspaceClientCapabilities(refresh_support=True)))
        elif change == "noconfig":
            workspace = result.workspace or types.WorkspaceClientCapabilities()
            result = attrs.evolve(result, workspace=attrs.evolve(workspace, configuration=False))
        else:
            raise ValueError(f"unknown capability change {change!r} in {profile!r}")
    return result


# -- the editor-like client ---------------------------------------------------------------------------------------

@dataclass
class _Waiter:
    matches: Callable[[Any], bool]
    future: asyncio.Future


class EditorClient(LanguageClient):
    """pytest-lsp's client that also keeps every diagnostics publish and message, and waits for matching ones."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.published: list[types.PublishDiagnosticsParams] = []
        self.initialize_result: types.InitializeResult | None = None
        self.handler_errors: list[Exception] = []
        """Exceptions raised while the client handled something from the server (spec warnings included)."""
        self._waiters: dict[str, list[_Waiter]] = {}
        self._seen: dict[str, list[Any]] = {}

    def record(self, method: str, params: Any) -> None:
        self._seen.setdefault(method, []).append(params)
        for waiter in list(self._waiters.get(method, [])):
            if not waiter.future.done() and waiter.matches(params):
                waiter.future.set_result(params)
                self._waiters[method].remove(waiter)

    def expect(self, method: str, matches: Callable[[Any], bool], *, since: int = 0) -> asyncio.Future:
        """A future for the first ``method`` notification (the ``since``-th seen onwards) for which ``matches``."""
        future = asyncio.get_running_loop().create_future()
        for params in self._seen.get(method, [])[since:]:
            if matches(params):
                future.set_result(params)
                return future
        self._waiters.setdefault(method, []).append(_Waiter(matches, future))
        return future

    def seen(self, method: str) -> list[Any]:
        return list(self._seen.get(method, []))

    async def publish_for(self, uri: str, version: int | None) -> types.PublishDiagnosticsParams:
        """The first diagnostics publish for ``uri`` stamped with ``version``."""
        future = self.expect(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS,
                             lambda params: params.uri == uri and params.version == version)
        try:
            return await asyncio.wait_for(future, WAIT_S)
        except TimeoutError:
            seen = [params.version for params in self.publishes_for(uri)]
            raise AssertionError(f"no diagnostics for {uri} version {version} within {WAIT_S:g} s; "
                                 f"versions published: {seen}") from None

    async def log_line(self, *words: str, since: int = 0) -> types.LogMessageParams:
        """The first ``window/logMessage`` that contains every one of ``words``."""
        future = self.expect(types.WINDOW_LOG_MESSAGE, lambda params: all(w in params.message for w in words),
                             since=since)
        return await asyncio.wait_for(future, WAIT_S)

    async def popup(self, *words: str, since: int = 0) -> types.ShowMessageParams:
        """The first ``window/showMessage`` that contains every one of ``words``."""
        future = self.expect(types.WINDOW_SHOW_MESSAGE, lambda params: all(w in params.message for w in words),
                             since=since)
        return await asyncio.wait_for(future, WAIT_S)

    def next_publish_for(self, uri: str) -> asyncio.Future:
        """A future for the next diagnostics publish for ``uri`` (call it before sending what causes it)."""
        method = types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS
        return self.expect(method, lambda params: params.uri == uri, since=len(self.seen(method)))

    def publishes_for(self, uri: str) -> list[types.PublishDiagnosticsParams]:
        return [params for params in self.published if params.uri == uri]

    async def pull(self, uri: str, previous_result_id: str | None = None) -> types.DocumentDiagnosticReport:
        return await asyncio.wait_for(self.text_document_diagnostic_async(types.DocumentDiagnosticParams(
            text_document=types.TextDocumentIdentifier(uri=uri), previous_result_id=previous_result_id)), WAIT_S)

    async def round_trip(self) -> None:
        """Wait until the server has handled everything sent so far (see the module docstring)."""
        await self.pull("file:///metagpt-lsp-tests/round-trip.py")

    def report_server_error(self, error: Exception, source: Any) -> None:
        self.handler_errors.append(error)
        super().report_server_error(error, source)


def _recording(method: str) -> Callable[[EditorClient, Any], Any]:
    default = DEFAULT_CLIENT_FEATURES[method]

    def handler(client: EditorClient, params: Any) -> Any:
        if method == types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS:
            client.published.append(params)
        result = default(client, params)
        client.record(method, params)
        return result

    return handler


def make_editor_client() -> EditorClient:
    client = EditorClient(converter_factory=default_converter)
    recorded = (types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS, types.WINDOW_LOG_MESSAGE, types.WINDOW_SHOW_MESSAGE,
                types.WORKSPACE_CONFIGURATION, types.WORKSPACE_DIAGNOSTIC_REFRESH)
    for method, handler in DEFAULT_CLIENT_FEATURES.items():
        client.feature(method)(_recording(method) if method in recorded else handler)
    return client


SERVER = ClientServerConfig(server_command=SERVER_COMMAND, client_factory=make_editor_client, server_env=SERVER_ENV)


def initialize_params(profile: str, initialization_options: Any = None) -> types.InitializeParams:
    return types.InitializeParams(
        capabilities=capabilities(profile),
        client_info=types.ClientInfo(name=f"pytest ({profile})"),
        initialization_options=initialization_options,
    )


@contextlib.asynccontextmanager
async def editor_session(profile: str, initialization_options: Any = None,
                         configuration: dict[str, Any] | None = None) -> AsyncIterator[EditorClient]:
    """A server started and initialized for ``profile``; shut down cleanly afterwards. ``configuration`` is what the
    client answers to ``workspace/configuration`` (``{"metagptLsp": {...}}``)."""
    client = await SERVER.start()
    assert isinstance(client, EditorClient)
    if configuration is not None:
        client.set_configuration(configuration)
    try:
        client.initialize_result = await client.initialize_session(initialize_params(profile, initialization_options))
        yield client
        assert not client.handler_errors, f"the client hit errors handling server messages: {client.handler_errors}"
        await client.shutdown_session()
    finally:
        process = client._server
        if process is not None and process.returncode is None:  # a test failed before shutdown: do not wait on it
            process.kill()
        await client.stop()


# -- the editor's side of a document ------------------------------------------------------------------------------

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _units(text: str, encoding: str) -> int:
    if encoding == "utf-8":
        return len(text.encode("utf-8", "surrogatepass"))
    if encoding == "utf-32":
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


@dataclass
class EditorDocument:
    """The editor's model of one document: its text and version, and the LSP messages that change it.

    Edits are given as indices into :attr:`text` (a Python ``str``) and sent as ranges in the negotiated position
    encoding, worked out here independently of the server's own conversion code.
    """

    uri: str
    text: str
    language_id: str = "python"
    version: int = 1
    encoding: str = "utf-16"
    sent: list[types.DidChangeTextDocumentParams] = field(default_factory=list)

    def _line_starts(self) -> list[int]:
        return [0, *(match.end() for match in _LINE_BREAK.finditer(self.text))]

    def position(self, index: int) -> types.Position:
        starts = self._line_starts()
        line = max(number for number, start in enumerate(starts) if start <= index)
        return types.Position(line=line, character=_units(self.text[starts[line]:index], self.encoding))

    def range_of(self, start: int, end: int) -> types.Range:
        return types.Range(start=self.position(start), end=self.position(end))

    def open(self, client: LanguageClient) -> int:
        client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
            uri=self.uri, language_id=self.language_id, version=self.version, text=self.text)))
        return self.version

    def edit(self, client: LanguageClient, start: int, end: int, new_text: str, version: int | None = None) -> int:
        """Replace ``text[start:end]`` with ``new_text`` in the model and send it as one incremental change."""
        change = types.TextDocumentContentChangePartial(range=self.range_of(start, end), text=new_text)
        self.text = self.text[:start] + new_text + self.text[end:]
        return self.send(client, [change], version)

    def insert(self, client: LanguageClient, index: int, new_text: str) -> int:
        return self.edit(client, index, index, new_text)

    def replace_all(self, client: LanguageClient, new_text: str) -> int:
        self.text = new_text
        return self.send(client, [types.TextDocumentContentChangeWholeDocument(text=new_text)])

    def send(self, client: LanguageClient, changes: list[Any], version: int | None = None) -> int:
        self.version = self.version + 1 if version is None else version
        params = types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=self.uri, version=self.version),
            content_changes=changes)
        self.sent.append(params)
        client.text_document_did_change(params)
        return self.version

    def close(self, client: LanguageClient) -> None:
        client.text_document_did_close(types.DidCloseTextDocumentParams(
            text_document=types.TextDocumentIdentifier(uri=self.uri)))


def summary(diagnostics: Any) -> list[tuple[int, int, int, int, str]]:
    """Diagnostics as comparable tuples: (start line, start char, end line, end char, message)."""
    return [(d.range.start.line, d.range.start.character, d.range.end.line, d.range.end.character, d.message)
            for d in diagnostics]
