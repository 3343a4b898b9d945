"""Code actions through the real server, as VS Code and Neovim 0.11 see them, against the scripted LLM: listing is
instant and asks no model; "Explain and fix" (for any diagnostic, ours or another tool's), "Generate code" and
"Review <function>" do their work when picked — in ``codeAction/resolve``, or with a command and
``workspace/applyEdit`` for clients that cannot resolve edits. Every edit is stamped with its version and parses;
none is ever returned for a version the editor no longer has; cancelling ends the progress and aborts the HTTP
request; LLM failures reach the user as a clear message."""

from __future__ import annotations

import ast
import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from metagpt_lsp.testing.lsp_support import WAIT_S, EditorDocument
from metagpt_lsp.testing.sample_module import STATS
from metagpt_lsp.testing.scripted_editor import (
    ASKS_CAUSE,
    ASKS_FIX,
    NO_FINDINGS,
    FeatureClient,
    GitProject,
    apply_text_edits,
    challenge_rule,
    findings,
    review_prompts,
    review_rule,
    scripted_session,
)
from metagpt_lsp.testing.scripted_llm import Rule, ScriptedLlm

PROFILES = ("visual-studio-code", "neovim@v0.11.0")
GOOD_LINE = 'return format(zlib.crc32(data) & 0xFFFFFFFF, "08x")'
BUGGY_LINE = 'return format(zlib.crc32(data) & 0xFFFF, "08x")'
CAUSE = "The mask 0xFFFF keeps only the low 16 bits of the CRC-32."
EXPLAIN = json.dumps({"cause": CAUSE, "line": BUGGY_LINE})
FIX = f"Here is the fix:\n```python\n{GOOD_LINE}\n```\n"
CONTENT_MODIFIED = -32801
REQUEST_CANCELLED = -32800


def open_buggy(client: FeatureClient, project: GitProject) -> EditorDocument:
    """stats.py opened, then its checksum broken by an edit (version 2)."""
    doc = client.track(EditorDocument(project.uri("stats.py"), STATS))
    doc.open(client)
    start = doc.text.index(GOOD_LINE)
    doc.edit(client, start, start + len(GOOD_LINE), BUGGY_LINE)
    return doc


def tool_diagnostic(doc: EditorDocument, text: str, message: str, source: str = "pyright",
                    code: str | None = "reportGeneralTypeIssues") -> types.Diagnostic:
    start = doc.text.index(text)
    return types.Diagnostic(range=doc.range_of(start, start + len(text)), message=message, source=source, code=code,
                            severity=types.DiagnosticSeverity.Error)


async def list_actions(client: FeatureClient, doc: EditorDocument, at: str,
                       diagnostics: list[types.Diagnostic] = (), only: list[str] | None = None) -> list[Any]:
    start = doc.text.index(at)
    return await asyncio.wait_for(client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=doc.uri), range=doc.range_of(start, start),
        context=types.CodeActionContext(diagnostics=list(diagnostics), only=only))), WAIT_S) or []


def titled(actions: list[Any], prefix: str) -> types.CodeAction:
    matching = [a for a in actions if isinstance(a, types.CodeAction) and a.title.startswith(prefix)]
    assert len(matching) == 1, f"expected one {prefix!r} action in {[a.title for a in actions]}"
    return matching[0]


def only_edit(action: types.CodeAction, version: int) -> list[types.TextEdit]:
    """The action's edits, checked to be one TextDocumentEdit stamped with ``version``."""
    assert action.edit is not None and action.edit.document_changes, f"no edit on {action.title!r}"
    (change,) = action.edit.document_changes
    assert isinstance(change, types.TextDocumentEdit)
    assert change.text_document.version == version
    return list(change.edits)


# -- listing ----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("profile", PROFILES)
async def test_listing_offers_every_action_and_asks_no_model(profile: str, project: GitProject, review_cache: Path,
                                                             scripted_llm: ScriptedLlm):
    async with scripted_session(profile, scripted_llm, project, review_cache) as client:
        doc = open_buggy(client, project)
        pyright = tool_diagnostic(doc, "zlib.crc32(data)", 'Argument of type "str" cannot be assigned to "bytes"')
        review = tool_diagnostic(doc, BUGGY_LINE, "masks the CRC", source="metagpt-review", code="review")
        actions = await list_actions(client, doc, BUGGY_LINE, [pyright, review])
        fixes = [a for a in actions if a.kind == types.CodeActionKind.QuickFix]
        assert [(a.title, list(a.diagnostics)) for a in fixes] == [
            (f"Explain and fix: {pyright.message}", [pyright]), ("Explain and fix: masks the CRC", [review])]
        assert titled(actions, "Review checksum").kind == "source.metagpt.review"
        assert not [a for a in actions if a.title.startswith("Generate code")], "checksum is not a stub"
        for fix in fixes:  # both presets resolve edits: the work waits for codeAction/resolve
            assert fix.edit is None and fix.command is None and fix.data["version"] == doc.version

        stub = await list_actions(client, doc, "Scale values linearly")
        assert titled(stub, "Generate code (implement normalise)").kind == "refactor.rewrite.metagpt.generate"
        titled(stub, "Review normalise")
        comment = await list_actions(client, doc, "TODO: a function that parses the footer")
        titled(comment, "Generate code (TODO: a function that parses the footer")
        assert not [a for a in comment if a.title.startswith("Review")], "a module-level comment is not a function"

        only_fixes = await list_actions(client, doc, "Scale values", [pyright], only=[types.CodeActionKind.QuickFix])
        assert [a.title for a in only_fixes] == [f"Explain and fix: {pyright.message}"]
        await client.round_trip()
        assert scripted_llm.requests == [], "listing code actions asked the model"


# -- resolve ----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("profile", PROFILES)
async def test_explain_and_fix_resolves_a_versioned_edit_that_parses(profile: str, project: GitProject,
                                                                     review_cache: Path, scripted_llm: ScriptedLlm):
    scripted_llm.script(Rule(EXPLAIN, last_user=ASKS_CAUSE), Rule(FIX, last_user=ASKS_FIX))
    async with scripted_session(profile, scripted_llm, project, review_cache) as client:
        doc = open_buggy(client, project)
        diagnostic = tool_diagnostic(doc, "zlib.crc32(data) & 0xFFFF", "checksum('abc') == '4788' (expected 8 digits)")
        fix = titled(await list_actions(client, doc, BUGGY_LINE, [diagnostic]), "Explain and fix")
        progress_mark = client.progress_mark()
        resolved = await asyncio.wait_for(client.code_action_resolve_async(fix), WAIT_S)

        fixed = apply_text_edits(doc.text, only_edit(resolved, doc.version))
        ast.parse(fixed)
        assert fixed == STATS, "the fix restores the mask and changes nothing else"
        assert [r.last_user_message.count("def checksum") for r in scripted_llm.completions] == [1, 1]
        await client.popup("Explain and fix", CAUSE)

        end = await client.progress_end("Explain and fix", since=progress_mark)
        assert end.token in client.progress_reports, "the token was created with window/workDoneProgress/create"
        values = client.progress_of(end.token)
        assert [v["kind"] for v in values][0] == "begin" and values[-1] == {"kind": "end", "message": "done"}
        steps = [v.get("message", "") for v in values if v["kind"] == "report"]
        assert [step.split(":")[0] for step in steps] == ["diagnosis", "generation", "review"], steps


async def test_a_client_without_resolve_gets_a_command_and_the_edit_through_apply_edit(
        project: GitProject, review_cache: Path, scripted_llm: ScriptedLlm):
    scripted_llm.script(Rule(EXPLAIN, last_user=ASKS_CAUSE), Rule(FIX, last_user=ASKS_FIX))
    async with scripted_session("visual-studio-code+noresolve", scripted_llm, project, review_cache) as client:
        doc = open_buggy(client, project)
        diagnostic = tool_diagnostic(doc, BUGGY_LINE, "wrong checksum", source="pytest", code=None)
        fix = titled(await list_actions(client, doc, BUGGY_LINE, [diagnostic]), "Explain and fix")
        assert fix.data is None and fix.command is not None and fix.command.command == "metagpt.explainAndFix"
        version = doc.version
        edited = client.expect(types.WORKSPACE_APPLY_EDIT, lambda _: True)
        answer = await asyncio.wait_for(client.workspace_execute_command_async(types.ExecuteCommandParams(
            command=fix.command.command, arguments=fix.command.arguments)), WAIT_S)
        assert answer == {"started": True}
        await asyncio.wait_for(edited, WAIT_S)
        await client.round_trip()
        (request,) = client.applied_edits
        (change,) = request.edit.document_changes
        assert change.text_document.version == version
        assert doc.text == STATS and doc.version == version + 1, "the editor applied the edit and sent didChange"
        assert list((await client.publish_for(doc.uri, doc.version)).diagnostics) == []


async def test_generate_code_fills_a_stub_and_a_comment(project: GitProject, review_cache: Path,
                                                        scripted_llm: ScriptedLlm):
    implementation = ('def normalise(values):\n    """Scale values linearly to the range 0..1."""\n'
                      '    low, high = min(values), max(values)\n'
                      '    return [(v - low) / ((high - low) or 1) for v in values]\n')
    footer = ('def parse_footer(line):\n    totals = {}\n    for part in line.split(","):\n'
              '        name, _, amount = part.partition(":")\n        totals[name.strip()] = float(amount)\n'
              '    return totals\n')
    scripted_llm.script(Rule(f"```python\n{implementation}```", last_user="Implement this function"),
                        Rule(f"```python\n{footer}```", last_user="Write the code that this comment asks for"))
    async with scripted_session("neovim@v0.11.0", scripted_llm, project, review_cache) as client:
        doc = client.track(EditorDocument(project.uri("stats.py"), STATS))
        doc.open(client)
        stub = titled(await list_actions(client, doc, "Scale values linearly"), "Generate code")
        edits = only_edit(await asyncio.wait_for(client.code_action_resolve_async(stub), WAIT_S), doc.version)
        filled = apply_text_edits(doc.text, edits)
        ast.parse(filled)
        assert implementation in filled and "    pass\n" not in filled
        assert filled.replace(implementation, "") == STATS.replace(
            'def normalise(values):\n    """Scale values linearly to the range 0..1."""\n    pass\n', "")

        comment = titled(await list_actions(client, doc, "# TODO: a function"), "Generate code")
        edits = only_edit(await asyncio.wait_for(client.code_action_resolve_async(comment), WAIT_S), doc.version)
        written = apply_text_edits(doc.text, edits)
        ast.parse(written)
        assert written.startswith(STATS.rstrip("\n")) and footer.strip() in written


@pytest.mark.parametrize("trusted", [None, False])
async def test_review_function_action_reviews_that_function_only(trusted: bool | None, project: GitProject,
                                                                 review_cache: Path, scripted_llm: ScriptedLlm):
    """An explicit review may run code: the claimed call crashes, so the finding is an Error that says how; a
    workspace the client calls untrusted runs nothing, and the same finding is Information, agreed but not run."""
    scripted_llm.script(review_rule(findings(("width = max(len(name) for name, _value in rows)",
                                              "fails on an empty list of rows", "warning")), about="def render_table"),
                        review_rule(NO_FINDINGS), challenge_rule("[]", "''", "ValueError"))
    options = None if trusted is None else {"workspaceTrusted": trusted}
    async with scripted_session("visual-studio-code", scripted_llm, project, review_cache, options) as client:
        doc = client.track(EditorDocument(project.uri("stats.py"), STATS))
        doc.open(client)
        await client.publish_for(doc.uri, 1)
        review = titled(await list_actions(client, doc, "Rows of (name, value) pairs"), "Review render_table")
        waiting = client.next_publish_for(doc.uri)
        await asyncio.wait_for(client.workspace_execute_command_async(types.ExecuteCommandParams(
            command=review.command.command, arguments=review.command.arguments)), WAIT_S)
        published = await asyncio.wait_for(waiting, WAIT_S)
        (diagnostic,) = published.diagnostics
        assert diagnostic.source == "metagpt-review"
        if trusted is None:
            assert diagnostic.message.startswith("fails on an empty list of rows (`render_table([])` raises "
                                                 "ValueError"), diagnostic.message
            assert diagnostic.severity == types.DiagnosticSeverity.Error
            assert diagnostic.data["evidence"]["executed"]["verdict"] == "crash"
        else:
            assert diagnostic.message == ("fails on an empty list of rows (review and diagnosis agree: "
                                          "`render_table([])` would give ValueError, expected '' (not run))")
            assert diagnostic.severity == types.DiagnosticSeverity.Information
            assert "executed" not in diagnostic.data["evidence"]
        (prompt,) = review_prompts(scripted_llm)
        assert "def render_table(rows):" in prompt and "def median" not in prompt


# -- stale versions and cancellation -----------------------------------------------------------------------------------

async def test_an_action_listed_for_an_older_version_is_refused(project: GitProject, review_cache: Path,
                                                                scripted_llm: ScriptedLlm):
    async with scripted_session("visual-studio-code", scripted_llm, project, review_cache) as client:
        doc = open_buggy(client, project)
        fix = titled(await list_actions(client, doc, BUGGY_LINE, [tool_diagnostic(doc, BUGGY_LINE, "wrong")]),
                     "Explain and fix")
        doc.insert(client, 0, "# edited meanwhile\n")
        with pytest.raises(JsonRpcException) as refused:
            await asyncio.wait_for(client.code_action_resolve_async(fix), WAIT_S)
        assert refused.value.code == CONTENT_MODIFIED
        assert scripted_llm.requests == []


async def test_an_edit_while_the_model_works_gets_no_edit_for_the_stale_version(
        project: GitProject, review_cache: Path, scripted_llm: ScriptedLlm):
    scripted_llm.script(Rule(EXPLAIN, last_user=ASKS_CAUSE), Rule(fault="hang", last_user=ASKS_FIX))
    async with scripted_session("visual-studio-code", scripted_llm, project, review_cache) as client:
        doc = open_buggy(client, project)
        fix = titled(await list_actions(client, doc, BUGGY_LINE, [tool_diagnostic(doc, BUGGY_LINE, "wrong")]),
                     "Explain and fix")
        progress_mark = client.progress_mark()
        resolving = asyncio.ensure_future(client.code_action_resolve_async(fix))
        explain, propose = await asyncio.wait_for(scripted_llm.wait_for_requests(2), WAIT_S)
        assert ASKS_FIX in propose.last_user_message

        doc.insert(client, doc.text.index("def checksum"), "# typed while the model works\n")
        try:
            resolved = await asyncio.wait_for(resolving, WAIT_S)
        except JsonRpcException as error:
            assert error.code == CONTENT_MODIFIED, error
        else:
            assert resolved.edit is None, "an edit for the stale version was returned"
        await asyncio.wait_for(propose.disconnected.wait(), WAIT_S)
        end = await client.progress_end("Explain and fix", since=progress_mark)
        assert end.value["message"] == "cancelled"


@pytest.mark.parametrize("how", ["$/cancelRequest", "window/workDoneProgress/cancel"])
async def test_cancelling_mid_fix_ends_the_progress_and_aborts_the_request(how: str, project: GitProject,
                                                                          review_cache: Path,
                                                                          scripted_llm: ScriptedLlm):
    scripted_llm.script(Rule(fault="hang", last_user=ASKS_CAUSE))
    async with scripted_session("visual-studio-code", scripted_llm, project, review_cache) as client:
        doc = open_buggy(client, project)
        fix = titled(await list_actions(client, doc, BUGGY_LINE, [tool_diagnostic(doc, BUGGY_LINE, "wrong")]),
                     "Explain and fix")
        progress_mark = client.progress_mark()
        begun = client.expect(types.PROGRESS, lambda p: p.value.get("kind") == "begin", since=progress_mark)
        resolving = asyncio.ensure_future(client.protocol.send_request_async(
            types.CODE_ACTION_RESOLVE, fix, msg_id="fix-to-cancel"))
        (hanging,) = await asyncio.wait_for(scripted_llm.wait_for_requests(1), WAIT_S)
        token = (await asyncio.wait_for(begun, WAIT_S)).token
        if how == "$/cancelRequest":
            client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="fix-to-cancel"))
        else:
            client.protocol.notify(types.WINDOW_WORK_DONE_PROGRESS_CANCEL, types.WorkDoneProgressCancelParams(
                token=token))

        try:
            resolved = await asyncio.wait_for(resolving, WAIT_S)
        except JsonRpcException as error:
            assert error.code == REQUEST_CANCELLED, error
        else:
            assert resolved.edit is None
        await asyncio.wait_for(hanging.disconnected.wait(), WAIT_S)
        end = await client.progress_end("Explain and fix", since=progress_mark)
        assert end.token == token and end.value["message"] == "cancelled"
        assert doc.text.count(BUGGY_LINE) == 1 and client.applied_edits == []


KEEP_ME = "def keep_me(s)\n    return s.strip()\n\n\nprint(keep_me(' a '))\n"


async def test_a_fix_answered_with_json_never_replaces_the_function(project: GitProject, review_cache: Path,
                                                                    scripted_llm: ScriptedLlm):
    """A small model mixing up the team's two reply formats answered ``{"findings": []}``: that dict literal parses,
    and it once replaced ``keep_me`` whole while ``print(keep_me(...))`` below still called it."""
    scripted_llm.script(Rule(NO_FINDINGS))
    async with scripted_session("visual-studio-code", scripted_llm, project, review_cache) as client:
        doc = client.track(EditorDocument(project.uri("keep.py"), KEEP_ME))
        doc.open(client)
        (syntax,) = (await client.publish_for(doc.uri, doc.version)).diagnostics
        fix = titled(await list_actions(client, doc, "def keep_me", [syntax]), "Explain and fix")
        mark = len(client.seen(types.WINDOW_SHOW_MESSAGE))
        resolved = await asyncio.wait_for(client.code_action_resolve_async(fix), WAIT_S)
        if resolved.edit is not None:
            fixed = apply_text_edits(doc.text, only_edit(resolved, doc.version))
            assert "def keep_me(s):" in fixed and fixed.count("return s.strip()") == 1, fixed
        else:
            await client.popup("Explain and fix", "no safe result", since=mark)
        assert scripted_llm.requests, "the model was asked"


# -- commands for clients without resolve ----------------------------------------------------------------------------

async def start_fix_command(client: FeatureClient, doc: EditorDocument, msg_id: str) -> Any:
    fix = titled(await list_actions(client, doc, BUGGY_LINE, [tool_diagnostic(doc, BUGGY_LINE, "wrong")]),
                 "Explain and fix")
    assert fix.command is not None, "a client without resolve gets a command"
    return await asyncio.wait_for(client.protocol.send_request_async(types.WORKSPACE_EXECUTE_COMMAND,
                                                                     types.ExecuteCommandParams(
        command=fix.command.command, arguments=fix.command.arguments), msg_id=msg_id), WAIT_S)


async def test_a_fix_command_answers_before_the_model_and_its_edit_follows(
        project: GitProject, review_cache: Path, scripted_llm: ScriptedLlm):
    """eglot waits 10 s for a command, Emacs frozen meanwhile: the answer must not wait for the model."""
    slow_model = asyncio.Event()
    scripted_llm.script(Rule(EXPLAIN, last_user=ASKS_CAUSE, gate=slow_model), Rule(FIX, last_user=ASKS_FIX))
    async with scripted_session("visual-studio-code+noresolve", scripted_llm, project, review_cache) as client:
        doc = open_buggy(client, project)
        edited = client.expect(types.WORKSPACE_APPLY_EDIT, lambda _: True)
        answer = await start_fix_command(client, doc, "slow-fix")
        assert answer == {"started": True}
        assert scripted_llm.requests == [] or not edited.done(), "the answer came before the model's"
        assert await list_actions(client, doc, "Scale values"), "other requests are served while the team works"
        slow_model.set()
        await asyncio.wait_for(edited, WAIT_S)
        await client.round_trip()
        assert doc.text == STATS, "the fix arrived through workspace/applyEdit and was applied"


@pytest.mark.parametrize("how", ["$/cancelRequest", "window/workDoneProgress/cancel", "a newer version"])
async def test_cancelling_a_fix_command_stops_the_work_and_no_edit_follows(how: str, project: GitProject,
                                                                          review_cache: Path,
                                                                          scripted_llm: ScriptedLlm):
    scripted_llm.script(Rule(EXPLAIN, last_user=ASKS_CAUSE), Rule(fault="hang", last_user=ASKS_FIX))
    async with scripted_session("visual-studio-code+noresolve", scripted_llm, project, review_cache) as client:
        doc = open_buggy(client, project)
        progress_mark = client.progress_mark()
        begun = client.expect(types.PROGRESS, lambda p: p.value.get("kind") == "begin", since=progress_mark)
        assert await start_fix_command(client, doc, "fix-to-cancel") == {"started": True}
        hanging = (await asyncio.wait_for(scripted_llm.wait_for_requests(2), WAIT_S))[-1]
        token = (await asyncio.wait_for(begun, WAIT_S)).token
        if how == "$/cancelRequest":
            client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="fix-to-cancel"))
        elif how == "window/workDoneProgress/cancel":
            client.protocol.notify(types.WINDOW_WORK_DONE_PROGRESS_CANCEL,
                                   types.WorkDoneProgressCancelParams(token=token))
        else:
            doc.edit(client, 0, 0, "# edited while the team worked\n")
        await asyncio.wait_for(hanging.disconnected.wait(), WAIT_S)
        end = await client.progress_end("Explain and fix", since=progress_mark)
        assert end.value["message"] == "cancelled"
        await client.round_trip()
        assert client.applied_edits == [], "a cancelled fix was applied"
        assert not [m for m in client.seen(types.WINDOW_SHOW_MESSAGE) if m.type == types.MessageType.Error]


@pytest.mark.parametrize("answer", ["decline", "error"])
async def test_an_edit_the_editor_declines_is_told_in_plain_words_not_as_an_error(
        answer: str, project: GitProject, review_cache: Path, scripted_llm: ScriptedLlm):
    scripted_llm.script(Rule(EXPLAIN, last_user=ASKS_CAUSE), Rule(FIX, last_user=ASKS_FIX))
    async with scripted_session("visual-studio-code+noresolve", scripted_llm, project, review_cache) as client:
        client.edit_answer = answer
        doc = open_buggy(client, project)
        mark = len(client.seen(types.WINDOW_SHOW_MESSAGE))
        assert await start_fix_command(client, doc, "declined-fix") == {"started": True}
        told = await client.popup("did not apply the edit", since=mark)
        assert told.type == types.MessageType.Info
        assert "internal error" not in told.message and "Traceback" not in told.message
        await client.round_trip()
        assert not [m for m in client.seen(types.WINDOW_SHOW_MESSAGE)[mark:] if m.type == types.MessageType.Error]
        assert BUGGY_LINE in doc.text
        if answer == "error":  # the client's own deliberate failure, not something the server did to it
            assert [str(e) for e in client.handler_errors] == ["ValueError: the editor could not apply the edit"]
            client.handler_errors.clear()


async def test_an_edit_typed_before_the_progress_bar_was_granted_cancels_quietly(
        project: GitProject, review_cache: Path, scripted_llm: ScriptedLlm):
    scripted_llm.script(Rule(EXPLAIN, last_user=ASKS_CAUSE), Rule(FIX, last_user=ASKS_FIX))
    async with scripted_session("visual-studio-code+noresolve", scripted_llm, project, review_cache) as client:
        client.progress_grant = asyncio.Event()
        doc = open_buggy(client, project)
        asked = client.expect(types.WINDOW_WORK_DONE_PROGRESS_CREATE, lambda _: True)
        mark = len(client.seen(types.WINDOW_SHOW_MESSAGE))
        assert await start_fix_command(client, doc, "typed-over") == {"started": True}
        await asyncio.wait_for(asked, WAIT_S)
        doc.edit(client, 0, 0, "# typed while the editor was still granting the progress bar\n")
        await client.round_trip()
        client.progress_grant.set()
        await client.round_trip()
        await client.popup("changed", since=mark)  # told why nothing follows, in plain words
        assert not [m for m in client.seen(types.WINDOW_SHOW_MESSAGE)[mark:] if m.type == types.MessageType.Error]
        assert client.applied_edits == [] and scripted_llm.requests == []


async def test_shutdown_with_a_fix_command_in_flight_answers_cleanly(project: GitProject, review_cache: Path,
                                                                     scripted_llm: ScriptedLlm):
    scripted_llm.script(Rule(fault="hang"))
    async with scripted_session("visual-studio-code+noresolve", scripted_llm, project, review_cache) as client:
        doc = open_buggy(client, project)
        assert await start_fix_command(client, doc, "in-flight") == {"started": True}
        await asyncio.wait_for(scripted_llm.wait_for_requests(1), WAIT_S)
    # scripted_session shut the server down on leaving: an error answer (-32603) would have raised there
    assert client.applied_edits == []


# -- LLM failures -----------------------------------------------------------------------------------------------------

FAILURES = {
    "HTTP 500": (Rule(fault="500"), ("failed with HTTP 500 after 2 attempts",)),
    "HTTP 429 after every retry": (Rule(fault="429", retry_after_s=0), ("rate limiting requests (HTTP 429)",
                                                                        "after 2 attempts", "wait a minute")),
    "no answer in time": (Rule(fault="hang"), ("did not answer within 1 s", "llm.requestTimeoutS")),
}


@pytest.mark.parametrize("failure", FAILURES)
async def test_llm_failures_reach_the_user_as_a_clear_message(failure: str, project: GitProject, review_cache: Path,
                                                              scripted_llm: ScriptedLlm):
    rule, words = FAILURES[failure]
    scripted_llm.script(rule)
    options = {"llm": {"maxRetries": 1, "requestTimeoutS": 1}}
    async with scripted_session("visual-studio-code", scripted_llm, project, review_cache, options) as client:
        doc = open_buggy(client, project)
        fix = titled(await list_actions(client, doc, BUGGY_LINE, [tool_diagnostic(doc, BUGGY_LINE, "wrong")]),
                     "Explain and fix")
        mark = len(client.seen(types.WINDOW_SHOW_MESSAGE))
        resolved = await asyncio.wait_for(client.code_action_resolve_async(fix), WAIT_S)
        assert resolved.edit is None
        shown = await client.popup("Explain and fix", "no safe result", *words, since=mark)
        assert shown.type in (types.MessageType.Warning, types.MessageType.Error)

        mark = len(client.seen(types.WINDOW_SHOW_MESSAGE))
        client.save(doc)
        shown = await client.popup("review incomplete", *words, since=mark)
        assert shown.type in (types.MessageType.Warning, types.MessageType.Error)


NESTED_SETTINGS = '''class Config:
    class Meta:
        ordering = ["name"]

    debug = False

    def describe(self):
        return "config"
'''


@pytest.mark.parametrize("at", ["debug = False", 'ordering = ["name"]', "class Meta"])
async def test_a_class_body_of_a_class_at_the_start_of_the_file_still_gets_answers(
        at: str, project: GitProject, review_cache: Path, scripted_llm: ScriptedLlm):
    """A nested class that begins where its parent begins (Django's and pydantic's ``class Config`` / ``Meta``): the
    climb to the enclosing function once found the same class again and froze the server for good."""
    async with scripted_session("visual-studio-code+inline", scripted_llm, project, review_cache) as client:
        doc = client.track(EditorDocument(project.uri("settings.py"), NESTED_SETTINGS))
        doc.open(client)
        actions = await list_actions(client, doc, at)
        assert not [a for a in actions if a.title.startswith("Generate code")], "a class body is not a stub"
        params = types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=doc.uri), position=doc.position(doc.text.index(at)),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked))
        pending = client.text_document_inline_completion_async(params)
        await asyncio.wait_for(pending, WAIT_S)  # an answer of any kind: the server is not frozen
        assert await list_actions(client, doc, "def describe")  # and it still answers the next request
