"""``metagpt-lsp check PATH...``: the real server, driven over LSP through a pipe, on files from the command line.

It starts ``python -m metagpt_lsp.server --stdio`` as a child process, opens each file in it exactly as an editor
would, waits for the diagnostics published for that version, and prints them as ``path:line:col: severity: message``.
Exit status: 0 when nothing was found, 1 when findings remain, 2 when a path could not be checked.
"""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from lsprotocol import types
from pygls.lsp.client import LanguageClient

from metagpt_lsp.agents.languages import language_for

_SKIPPED_DIRS = {".git", ".hg", ".svn", "node_modules", ".venv", "venv", "__pycache__", ".tox", "build", "dist"}
_SEVERITY = {1: "error", 2: "warning", 3: "info", 4: "hint"}


@dataclass(frozen=True)
class Finding:
    path: Path
    diagnostic: types.Diagnostic

    def __str__(self) -> str:
        start = self.diagnostic.range.start
        severity = _SEVERITY.get(int(self.diagnostic.severity or 1), "error")
        source = f" [{self.diagnostic.source}]" if self.diagnostic.source else ""
        return f"{self.path}:{start.line + 1}:{start.character + 1}: {severity}: {self.diagnostic.message}{source}"


def collect_files(paths: list[str]) -> tuple[list[Path], list[str]]:
    """Files to check (folders walked for files of known languages) and complaints about paths that are not."""
    files: list[Path] = []
    complaints: list[str] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for root, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS and not d.startswith("."))
                files.extend(Path(root) / name for name in sorted(names)
                             if language_for(None, name) is not None)
        elif path.is_file():
            files.append(path)
        else:
            complaints.append(f"{raw}: no such file or folder")
    return files, complaints


class CheckClient(LanguageClient):
    """A minimal editor: remembers the latest diagnostics per URI and lets callers wait for a version's set."""

    def __init__(self) -> None:
        super().__init__("metagpt-lsp-check", "1")
        self.published: dict[str, types.PublishDiagnosticsParams] = {}
        self.messages: list[str] = []
        self._changed = asyncio.Condition()

        @self.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        async def _diagnostics(_client: LanguageClient, params: types.PublishDiagnosticsParams) -> None:
            async with self._changed:
                self.published[params.uri] = params
                self._changed.notify_all()

        @self.feature(types.WINDOW_SHOW_MESSAGE)
        def _show(_client: LanguageClient, params: types.ShowMessageParams) -> None:
            self.messages.append(params.message)

        @self.feature(types.WINDOW_LOG_MESSAGE)
        def _log(_client: LanguageClient, params: types.LogMessageParams) -> None:
            if params.type in (types.MessageType.Error, types.MessageType.Warning):
                self.messages.append(params.message)

    async def diagnostics_for(self, uri: str, version: int, timeout: float) -> list[types.Diagnostic]:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(
                lambda: uri in self.published and (self.published[uri].version or 0) >= version), timeout)
            return list(self.published[uri].diagnostics)


def client_capabilities() -> types.ClientCapabilities:
    return types.ClientCapabilities(
        text_document=types.TextDocumentClientCapabilities(
            publish_diagnostics=types.PublishDiagnosticsClientCapabilities(version_support=True),
            synchronization=types.TextDocumentSyncClientCapabilities(did_save=True),
        ),
        window=types.WindowClientCapabilities(work_done_progress=True),
        general=types.GeneralClientCapabilities(position_encodings=[types.PositionEncodingKind.Utf16]),
    )


async def check_files(files: list[Path], timeout: float, log_level: str) -> tuple[list[Finding], list[str]]:
    client = CheckClient()
    await client.start_io(sys.executable, "-m", "metagpt_lsp.server", "--stdio", "--log-level", log_level)
    findings: list[Finding] = []
    problems: list[str] = []
    try:
        root = Path.cwd().resolve()
        await client.initialize_async(types.InitializeParams(
            capabilities=client_capabilities(), root_uri=root.as_uri(),
            client_info=types.ClientInfo(name="metagpt-lsp check"),
            workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name=root.name)]))
        client.initialized(types.InitializedParams())
        for path in files:
            try:
                text = path.read_bytes().decode("utf-8")
            except (OSError, UnicodeDecodeError) as error:
                problems.append(f"{path}: cannot be read as UTF-8 text ({error})")
                continue
            uri = path.resolve().as_uri()
            language = language_for(None, uri)
            client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
                uri=uri, language_id=language.language_ids[0] if language else "plaintext", version=1, text=text)))
            try:
                diagnostics = await client.diagnostics_for(uri, 1, timeout)
            except TimeoutError:
                problems.append(f"{path}: no diagnostics from the server within {timeout:g} s")
                continue
            findings.extend(Finding(path, diagnostic) for diagnostic in diagnostics)
            client.text_document_did_close(
                types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri)))
        await client.shutdown_async(None)
        client.exit(None)
    finally:
        await client.stop()
    return findings, problems + client.messages


def run_check(paths: list[str], timeout: float = 60.0, log_level: str = "warning") -> int:
    files, complaints = collect_files(paths)
    for complaint in complaints:
        print(complaint, file=sys.stderr)
    if not files:
        print("nothing to check", file=sys.stderr)
        return 2
    findings, problems = asyncio.run(check_files(files, timeout, log_level))
    for finding in findings:
        print(finding)
    for problem in problems:
        print(f"note: {problem}", file=sys.stderr)
    print(f"{len(files)} file(s) checked, {len(findings)} finding(s)", file=sys.stderr)
    if complaints or (problems and not findings and any("within" in p for p in problems)):
        return 2
    return 1 if findings else 0
