"""Code actions: "Explain and fix" for any diagnostic, "Generate code" and "Review this function".

Listing is instant and asks no model: it only looks at the diagnostics in range and the tree at the cursor. The team
runs when the user picks an action — in ``codeAction/resolve``, or, for clients that cannot resolve edits, after a
``workspace/executeCommand`` that answers at once, ending with ``workspace/applyEdit`` (:mod:`.command_work`). The
answer is a ``TextDocumentEdit`` stamped with the version the team worked on; if the document changed meanwhile the work
is cancelled and nothing is applied.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcContentModified

from metagpt_lsp.agents.syntax import DocumentSnapshot, TextPosition, innermost_unit
from metagpt_lsp.agents.team import FixRequest, generation_site

from .progress_reporting import TaskProgress
from .review_on_save import SOURCE as REVIEW_SOURCE
from .review_on_save import review_document
from .settings import may_run_code
from .workspace_edits import StaleResult, workspace_edit

log = logging.getLogger(__name__)

FIX_COMMAND = "metagpt.explainAndFix"
GENERATE_COMMAND = "metagpt.generate"
REVIEW_COMMAND = "metagpt.reviewFunction"
REVIEW_FILE_COMMAND = "metagpt.reviewFile"
FIX_KIND = types.CodeActionKind.QuickFix
GENERATE_KIND = "refactor.rewrite.metagpt.generate"
REVIEW_KIND = "source.metagpt.review"
ACTION_KINDS = [FIX_KIND, GENERATE_KIND, REVIEW_KIND]


def _offset(snapshot: DocumentSnapshot, position: types.Position) -> int:
    return snapshot.offset_at(TextPosition(position.line, position.character))


def client_resolves_edits(capabilities: types.ClientCapabilities) -> bool:
    code_action = capabilities.text_document.code_action if capabilities.text_document else None
    resolve = code_action.resolve_support if code_action else None
    return bool(resolve and "edit" in resolve.properties)


def _action(title: str, kind: types.CodeActionKind | str, data: dict[str, Any], resolves: bool, command: str,
            diagnostics: list[types.Diagnostic] | None = None) -> types.CodeAction:
    action = types.CodeAction(title=title, kind=kind, diagnostics=diagnostics)
    if resolves:
        action.data = data
    else:
        action.command = types.Command(title=title, command=command, arguments=[data])
    return action


def _kind_value(kind: types.CodeActionKind | str | None) -> str:
    return kind.value if isinstance(kind, types.CodeActionKind) else str(kind or "")


def list_actions(server: Any, params: types.CodeActionParams) -> list[types.CodeAction]:
    """The actions for a range — instantly, without asking any model."""
    snapshot = server.documents.get(params.text_document.uri)
    if snapshot is None:
        return []
    wanted = params.context.only
    resolves = client_resolves_edits(server.client_capabilities)
    base = {"uri": snapshot.uri, "version": snapshot.version}
    actions = []
    if snapshot.tree is not None:
        for diagnostic in params.context.diagnostics:
            title = f"Explain and fix: {diagnostic.message.splitlines()[0][:80]}" if diagnostic.message else \
                "Explain and fix"
            data = {**base, "action": "fix", "diagnostic": server.converter.unstructure(diagnostic)}
            actions.append(_action(title, FIX_KIND, data, resolves, FIX_COMMAND, [diagnostic]))
        cursor = _offset(snapshot, params.range.start)
        site = generation_site(snapshot, cursor)
        if site is not None:
            data = {**base, "action": "generate", "position": server.converter.unstructure(
                params.range.start)}
            actions.append(_action(f"Generate code ({site.instruction[:60]})", GENERATE_KIND, data, resolves,
                                   GENERATE_COMMAND))
        unit = innermost_unit(snapshot, cursor, cursor)
        if unit is not None:
            data = {**base, "action": "review", "position": server.converter.unstructure(
                params.range.start)}
            review = types.CodeAction(title=f"Review {unit.name}", kind=REVIEW_KIND,
                                      command=types.Command(title=f"Review {unit.name}", command=REVIEW_COMMAND,
                                                            arguments=[data]))
            actions.append(review)
    if wanted:
        actions = [a for a in actions if any(_kind_value(a.kind).startswith(_kind_value(kind)) for kind in wanted)]
    return actions


def _changed_since(server: Any, data: dict[str, Any]) -> str | None:
    """Why an action's document is no longer the version it was listed for, or None if it still is."""
    uri, version = data.get("uri"), data.get("version")
    current = server.documents.get(uri) if isinstance(uri, str) else None
    if current is None:
        return f"{uri} was closed while the team worked"
    if current.version != version:
        return (f"{uri} changed (version {version} -> {current.version}) while the team worked; the result was "
                "discarded — ask again")
    return None


async def resolve_action(server: Any, action: types.CodeAction) -> types.CodeAction:
    """Run the team for a picked action and put its checked, versioned edit on it.

    A newer version of the document cancels the work (see :mod:`.document_tasks`); the editor then hears
    ``ContentModified``, as the protocol asks, rather than a cancellation it did not request.
    """
    data = action.data if isinstance(action.data, dict) else {}
    try:
        edit = await run_action(server, data)
    except StaleResult as error:
        raise JsonRpcContentModified(str(error)) from None
    except asyncio.CancelledError:
        stale = _changed_since(server, data)
        if stale is None:
            raise
        raise JsonRpcContentModified(stale) from None
    if edit is not None:
        action.edit = edit
    return action


def execute_action(server: Any, data: dict[str, Any]) -> dict[str, Any]:
    """The same work for clients without resolve, as a command that answers at once (:mod:`.command_work`).

    The answer says whether the work started (``{"started": true}``) or why not; the work then runs on, with
    progress, and a fix or a generation reaches the editor as ``workspace/applyEdit``. A ``$/cancelRequest`` for
    this command's id, a cancel from the progress bar or a newer version of the document stops it: no edit follows.
    """
    uri, version = data.get("uri"), data.get("version")
    current = server.documents.get(uri) if isinstance(uri, str) else None
    if current is None or current.version != version:
        reason = (f"{uri} is not open" if current is None else
                  f"{uri} changed since the action was listed (version {version} -> {current.version}); ask again")
        server.tell_user(reason, types.MessageType.Info)
        return {"started": False, "reason": reason}
    server.command_work.start(server.protocol.msg_id, _run_and_apply(server, data))
    return {"started": True}


async def _run_and_apply(server: Any, data: dict[str, Any]) -> None:
    try:
        edit = await run_action(server, data)
    except StaleResult as error:
        server.tell_user(str(error), types.MessageType.Info)
        return
    except asyncio.CancelledError:
        stale = _changed_since(server, data)
        if stale is not None:
            server.tell_user(stale, types.MessageType.Info)
        raise
    if edit is None:
        return
    server.document_tasks.release(data["uri"], "action")  # the didChange the edit causes must not cancel this
    await apply_edit(server, edit)


async def apply_edit(server: Any, edit: types.WorkspaceEdit) -> bool:
    """Send ``workspace/applyEdit``; True when the editor applied it. A declined edit, an error answer or no answer
    in time is the editor's choice, not a fault: the user is told in plain words and the log keeps it at info."""
    try:
        result = await server.workspace_apply_edit_async(types.ApplyWorkspaceEditParams(edit=edit,
                                                                                          label="metagpt-lsp"))
    except asyncio.CancelledError:
        raise
    except Exception as error:  # noqa: BLE001 - an error answer, or none in time: the edit was not applied
        server.tell_user(f"the editor did not apply the edit ({_plain(error)})", types.MessageType.Info)
        return False
    if result is None or not result.applied:
        reason = (result.failure_reason if result is not None else None) or "declined"
        server.tell_user(f"the editor did not apply the edit ({reason})", types.MessageType.Info)
        return False
    return True


def _plain(error: BaseException) -> str:
    message = getattr(error, "message", None) or str(error) or type(error).__name__
    return " ".join(str(message).split())[:200]


async def run_action(server: Any, data: dict[str, Any]) -> types.WorkspaceEdit | None:
    uri, version, kind = data.get("uri"), data.get("version"), data.get("action")
    snapshot = server.documents.get(uri) if isinstance(uri, str) else None
    if snapshot is None:
        raise StaleResult(f"{uri} is not open")
    if version != snapshot.version:
        raise StaleResult(f"{uri} changed since the action was listed (version {version} -> {snapshot.version})")
    if kind == "review":
        position = server.converter.structure(data["position"], types.Position)
        cursor = _offset(snapshot, position)
        unit = innermost_unit(snapshot, cursor, cursor)
        await review_document(server, snapshot.uri, (unit,) if unit else (),
                              title=f"Reviewing {unit.name if unit else ''}",
                              may_run_code=may_run_code(server.settings, on_save=False))
        return None
    server.document_tasks.track(uri, "action")
    team = await server.team_host.team()
    if kind == "fix":
        diagnostic = server.converter.structure(data["diagnostic"], types.Diagnostic)
        request = replace(_fix_request(snapshot, diagnostic), run_code=may_run_code(server.settings, on_save=False))
        title, run = "Explain and fix", team.explain_and_fix
    elif kind == "generate":
        position = server.converter.structure(data["position"], types.Position)
        request = generation_site(snapshot, _offset(snapshot, position))
        if request is None:
            server.tell_user("nothing to generate here any more")
            return None
        title, run = "Generate code", team.generate
    else:
        raise ValueError(f"unknown code action {kind!r}")
    async with TaskProgress(server, title) as progress:
        result = await run(request, progress.report)
    if not result.ok:
        server.tell_user(f"{title}: no safe result — {result.reason}" +
                         (f"\nCause: {result.explanation}" if result.explanation else ""))
        return None
    edit = workspace_edit(snapshot, server.documents.get(uri), result.edits)
    if result.explanation:
        server.window_show_message(types.ShowMessageParams(
            type=types.MessageType.Info, message=f"{title}: {result.explanation}"))
    return edit


async def review_file(server: Any, data: Any) -> int:
    """``metagpt.reviewFile {uri, all?}``: review what changed since HEAD (everything with ``all``) now; returns
    the number of findings."""
    uri = data.get("uri") if isinstance(data, dict) else None
    if not isinstance(uri, str) or uri not in server.documents:
        server.tell_user(f"cannot review {uri!r}: it is not open")
        return 0
    server.document_tasks.track(uri, "review")
    whole = bool(data.get("all"))
    result = await review_document(server, uri, whole_file=whole, title="Reviewing the file" if whole else
                                   "Reviewing changed code", may_run_code=may_run_code(server.settings, on_save=False))
    return len(result.findings) if result is not None else 0


def _fix_request(snapshot: DocumentSnapshot, diagnostic: types.Diagnostic) -> FixRequest:
    start = snapshot.offset_at(TextPosition(diagnostic.range.start.line, diagnostic.range.start.character))
    end = snapshot.offset_at(TextPosition(diagnostic.range.end.line, diagnostic.range.end.character))
    data = diagnostic.data if isinstance(diagnostic.data, dict) else {}
    known = data.get("cause") if diagnostic.source == REVIEW_SOURCE else None
    code = str(diagnostic.code) if diagnostic.code is not None else None
    return FixRequest(snapshot, start, end, diagnostic.message, diagnostic.source, code,
                      known if isinstance(known, str) else None)
