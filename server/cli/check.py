"""``metagpt-lsp check PATH... [--fix] [--apply]``: the real server, driven over LSP through a pipe.

It starts ``python -m metagpt_lsp.server --stdio`` as a child process and, for each file, does what an editor would:
opens it (syntax diagnostics), asks for a review of what changed since HEAD (``metagpt.reviewFile``; a file outside git,
or every file with ``--all``, is reviewed whole), and prints the findings as ``path:line:col: severity: message
[source]``. With ``--fix`` it picks "Explain and fix" on each finding, applies the checked edit to its copy of the text
and prints the result as a unified diff; ``--apply`` also writes it to the file. Exit status: 0 when nothing remains in
the files, 1 when findings remain (with ``--fix`` alone a fix shown but not written counts: the file still holds its
finding), 2 when a path could not be checked.
"""

from __future__ import annotations

import asyncio
import difflib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.lsp.client import LanguageClient

from metagpt_lsp.agents.syntax import language_for

if TYPE_CHECKING:
    from .check_batch import BatchOptions

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
            return None  # the log is for editors' log panes; what the user must see comes as showMessage

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
            code_action=types.CodeActionClientCapabilities(
                data_support=True, resolve_support=types.ClientCodeActionResolveOptions(properties=["edit"]),
                code_action_literal_support=types.ClientCodeActionLiteralOptions(
                    code_action_kind=types.ClientCodeActionKindOptions(value_set=[types.CodeActionKind.QuickFix]))),
        ),
        window=types.WindowClientCapabilities(work_done_progress=False),
        general=types.GeneralClientCapabilities(position_encodings=[types.PositionEncodingKind.Utf16]),
    )


@dataclass
class FileReport:
    """What check found in one file, and the text after ``--fix``."""

    path: Path
    findings: list[Finding]
    original: str
    fixed: str
    fixes_applied: int = 0
    notes: list[str] | None = None
    fixed_findings: list[Finding] = field(default_factory=list)
    """The findings that ``--fix`` found an edit for (they are gone from ``findings``)."""


def apply_text_edits(text: str, edits: list[types.TextEdit]) -> str:
    """Apply LSP text edits (UTF-16 positions) to ``text`` — the editor's side of a workspace edit."""
    from metagpt_lsp.agents.syntax import DocumentSnapshot, TextPosition

    snapshot = DocumentSnapshot.open("file:///check", 0, text)
    data = snapshot.source
    for edit in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
        start = snapshot.offset_at(TextPosition(edit.range.start.line, edit.range.start.character))
        end = snapshot.offset_at(TextPosition(edit.range.end.line, edit.range.end.character))
        data = data[:start] + edit.new_text.encode("utf-8", "surrogatepass") + data[end:]
    return data.decode("utf-8", "surrogatepass")


async def _fix_one(client: CheckClient, uri: str, version: int, diagnostic: types.Diagnostic,
                   timeout: float) -> list[types.TextEdit] | str:
    """Pick "Explain and fix" for one diagnostic; the edit's text edits, or why there is none."""
    actions = await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), range=diagnostic.range,
        context=types.CodeActionContext(diagnostics=[diagnostic], only=[types.CodeActionKind.QuickFix])))
    fix = next((a for a in actions or [] if isinstance(a, types.CodeAction) and a.title.startswith("Explain and fix")),
               None)
    if fix is None:
        return "no fix offered"
    before = len(client.messages)
    try:
        resolved = await asyncio.wait_for(client.code_action_resolve_async(fix), timeout)
    except TimeoutError:
        return f"no answer within {timeout:g} s"
    except Exception as error:  # noqa: BLE001 - an error answer from the server is reported, not raised
        return f"the server answered with an error: {error}"
    edit = resolved.edit
    if edit is None or not edit.document_changes:
        said = client.messages[before:]
        return said[-1] if said else "no safe fix"
    change = edit.document_changes[0]
    if not isinstance(change, types.TextDocumentEdit) or change.text_document.version != version:
        return "the edit was for another version: not applied"
    return [e for e in change.edits if isinstance(e, types.TextEdit)]


async def _check_file(client: CheckClient, path: Path, fix: bool, timeout: float,
                      review_all: bool = False) -> FileReport:
    text = path.read_bytes().decode("utf-8")
    uri = path.resolve().as_uri()
    language = language_for(None, uri)
    client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
        uri=uri, language_id=language.language_ids[0] if language else "plaintext", version=1, text=text)))
    await client.diagnostics_for(uri, 1, timeout)
    notes: list[str] = []
    if language is not None:
        await asyncio.wait_for(client.workspace_execute_command_async(types.ExecuteCommandParams(
            command="metagpt.reviewFile", arguments=[{"uri": uri, "all": review_all}])), timeout)
    diagnostics = await client.diagnostics_for(uri, 1, timeout)
    report = FileReport(path, [Finding(path, d) for d in diagnostics], text, text, notes=notes)
    version, current = 1, text
    attempted: set[tuple[str | None, str]] = set()
    while fix:
        diagnostic = next((d for d in diagnostics if (d.source, d.message) not in attempted), None)
        if diagnostic is None:
            break
        attempted.add((diagnostic.source, diagnostic.message))
        outcome = await _fix_one(client, uri, version, diagnostic, timeout)
        if isinstance(outcome, str):
            notes.append(f"{path}:{diagnostic.range.start.line + 1}: not fixed: {outcome}")
            continue
        current = apply_text_edits(current, outcome)
        version += 1
        report.fixes_applied += 1
        report.fixed_findings.append(Finding(path, diagnostic))
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=current)]))
        diagnostics = await client.diagnostics_for(uri, version, timeout)
    report.findings = [Finding(path, d) for d in diagnostics]
    report.fixed = current
    client.text_document_did_close(types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(
        uri=uri)))
    return report


async def check_files(files: list[Path], timeout: float, log_level: str, fix: bool = False,
                      review_all: bool = False, settings: Any = None) -> tuple[list[FileReport], list[str]]:
    """Check ``files`` through the real server; ``settings`` (editor settings JSON) go as initializationOptions."""
    client = CheckClient()
    await client.start_io(sys.executable, "-m", "metagpt_lsp.server", "--stdio", "--log-level", log_level)
    reports: list[FileReport] = []
    problems: list[str] = []
    try:
        root = Path.cwd().resolve()
        await client.initialize_async(types.InitializeParams(
            capabilities=client_capabilities(), root_uri=root.as_uri(), initialization_options=settings,
            client_info=types.ClientInfo(name="metagpt-lsp check"),
            workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name=root.name)]))
        client.initialized(types.InitializedParams())
        for path in files:
            try:
                reports.append(await _check_file(client, path, fix, timeout, review_all))
            except UnicodeDecodeError as error:
                problems.append(f"{path}: cannot be read as UTF-8 text ({error})")
            except OSError as error:
                problems.append(f"{path}: cannot be read ({error})")
            except TimeoutError:
                problems.append(f"{path}: no answer from the server within {timeout:g} s")
        await client.shutdown_async(None)
        client.exit(None)
    finally:
        await client.stop()
    return reports, problems + client.messages


def run_check(paths: list[str], timeout: float = 600.0, log_level: str = "warning", fix: bool = False,
              review_all: bool = False,
              apply: bool = False, batch: BatchOptions | None = None) -> int:
    """Check ``paths``: through the real server over LSP, or with ``batch`` options as tasks on the batch engine
    (``check_batch``: Dask workers, ``--results``, ``--diff``, JSON/SARIF)."""
    files, complaints = collect_files(paths)
    for complaint in complaints:
        print(complaint, file=sys.stderr)
    if not files:
        print("nothing to check", file=sys.stderr)
        return 2
    if batch is not None:
        from .check_batch import run_batch

        return run_batch(files, complaints, batch)
    reports, problems = asyncio.run(check_files(files, timeout, log_level, fix or apply, review_all))
    remaining = 0
    for report in reports:
        for finding in report.fixed_findings:
            print(f"{finding} (fixed{'' if apply else ' in the diff below'})")
        for finding in report.findings:
            print(finding)
        remaining += len(report.findings)
        if report.fixed != report.original:
            sys.stdout.writelines(difflib.unified_diff(
                report.original.splitlines(keepends=True), report.fixed.splitlines(keepends=True),
                f"a/{report.path}", f"b/{report.path}"))
            if apply:
                report.path.write_text(report.fixed, encoding="utf-8", newline="")
        for note in report.notes or []:
            print(f"note: {note}", file=sys.stderr)
    for problem in dict.fromkeys(problems):
        print(f"note: {problem}", file=sys.stderr)
    fixed = sum(report.fixes_applied for report in reports)
    summary = f"{len(reports)} file(s) checked, {remaining} finding(s)"
    if fix or apply:
        summary += (f" left, {fixed} fix(es) {'written' if apply else 'shown as a diff (use --apply to write them)'}")
    print(summary, file=sys.stderr)
    if complaints or len(reports) < len(files):
        return 2
    unwritten = 0 if apply else fixed
    return 1 if remaining or unwritten else 0
