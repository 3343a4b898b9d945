"""The commands that show what the team does (status, trace, team, clear the review cache) and work-done progress,
through the real server against the scripted LLM in a real git repository.

The features themselves have their own files: test_review_on_save.py, test_code_actions.py,
test_inline_completion.py and test_check_fix.py.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types

from metagpt_lsp.testing.lsp_support import WAIT_S, EditorDocument
from metagpt_lsp.testing.sample_module import STATS
from metagpt_lsp.testing.scripted_editor import (
    ASKS_CAUSE,
    ASKS_FIX,
    FeatureClient,
    GitProject,
    challenge_rule,
    findings,
    review_prompts,
    review_rule,
    scripted_session,
)
from metagpt_lsp.testing.scripted_llm import Rule, ScriptedLlm

GOOD_LINE = 'return format(zlib.crc32(data) & 0xFFFFFFFF, "08x")'
BUGGY_LINE = 'return format(zlib.crc32(data) & 0xFFFF, "08x")'
CAUSE = "The mask keeps 16 bits."


async def command(client: FeatureClient, name: str, *arguments: Any) -> Any:
    return await asyncio.wait_for(client.workspace_execute_command_async(types.ExecuteCommandParams(
        command=name, arguments=list(arguments))), WAIT_S)


def open_buggy(client: FeatureClient, project: GitProject) -> EditorDocument:
    doc = client.track(EditorDocument(project.uri("stats.py"), STATS))
    doc.open(client)
    start = doc.text.index(GOOD_LINE)
    doc.edit(client, start, start + len(GOOD_LINE), BUGGY_LINE)
    return doc


async def save_and_wait(client: FeatureClient, doc: EditorDocument) -> None:
    mark = client.progress_mark()
    client.save(doc)
    await client.progress_end("Reviewing", since=mark)


async def fix(client: FeatureClient, doc: EditorDocument) -> types.CodeAction:
    start = doc.text.index(BUGGY_LINE)
    diagnostic = types.Diagnostic(range=doc.range_of(start, start + len(BUGGY_LINE)), message="wrong checksum",
                                  source="pyright")
    actions = await asyncio.wait_for(client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=doc.uri), range=diagnostic.range,
        context=types.CodeActionContext(diagnostics=[diagnostic]))), WAIT_S)
    (action,) = [a for a in actions if a.title.startswith("Explain and fix")]
    return await asyncio.wait_for(client.code_action_resolve_async(action), WAIT_S)


async def test_status_trace_and_team_commands(project: GitProject, review_cache: Path, scripted_llm: ScriptedLlm):
    scripted_llm.script(Rule(json.dumps({"cause": CAUSE, "line": BUGGY_LINE}), last_user=ASKS_CAUSE),
                        Rule(f"```python\n{GOOD_LINE}\n```", last_user=ASKS_FIX))
    async with scripted_session("visual-studio-code", scripted_llm, project, review_cache) as client:
        doc = open_buggy(client, project)
        before = await command(client, "metagpt.status")
        assert before["teamStarted"] is False and before["requests"] == 0 and before["tasksInFlight"] == 0
        assert await command(client, "metagpt.trace") == "no task has run yet"

        assert (await fix(client, doc)).edit is not None
        status = await command(client, "metagpt.status")
        assert set(status) == {"version", "endpoint", "model", "apiKey", "teamStarted", "tasksInFlight",
                               "promptTokens", "completionTokens", "requests", "cacheHits", "openDocuments",
                               "diagnostics"}
        assert (status["endpoint"], status["model"], status["apiKey"]) == (scripted_llm.base_url, "gpt-4o-mini",
                                                                            "set")
        assert status["teamStarted"] is True and status["requests"] == 2 and status["tasksInFlight"] == 0
        sent = sum(len("".join(str(m.get("content")) for m in r.body["messages"])) // 4
                   for r in scripted_llm.completions)
        assert status["promptTokens"] == sent and status["completionTokens"] > 0
        assert (status["openDocuments"], status["diagnostics"]) == (1, "push")
        assert "sk-scripted" not in json.dumps(status)
        await client.popup("metagpt-lsp: gpt-4o-mini at", "tokens spent")

        trace = await command(client, "metagpt.trace")
        for agent in ("diagnosis", "generation", "review"):
            assert agent in trace, trace
        assert "accepted" in trace

        team = await command(client, "metagpt.team")
        assert set(team) == {"text", "mermaid"}
        assert all(agent in team["text"] for agent in ("diagnosis", "generation", "review"))
        assert team["mermaid"].lstrip().startswith(("graph", "flowchart"))


async def test_clearing_the_review_cache_makes_the_next_save_ask_again(project: GitProject, review_cache: Path,
                                                                      scripted_llm: ScriptedLlm):
    scripted_llm.script(review_rule(findings((BUGGY_LINE, "masks the CRC", "error"))), challenge_rule())
    async with scripted_session("visual-studio-code", scripted_llm, project, review_cache) as client:
        doc = open_buggy(client, project)
        await save_and_wait(client, doc)
        await save_and_wait(client, doc)
        assert len(review_prompts(scripted_llm)) == 1, "the unchanged save was reviewed again"

        assert await command(client, "metagpt.clearReviewCache") == 1
        await client.popup("forgot 1 remembered review")
        await save_and_wait(client, doc)
        assert len(review_prompts(scripted_llm)) == 2, "after clearing the cache the save did not ask the model"
        assert len(scripted_llm.completions) == 4, "each review and its challenge, twice, and nothing else"


@pytest.mark.parametrize("profile", ["neovim@v0.11.0", "visual-studio-code"])
async def test_a_review_reports_progress_begin_steps_and_end(profile: str, project: GitProject, review_cache: Path,
                                                             scripted_llm: ScriptedLlm):
    scripted_llm.script(review_rule())
    async with scripted_session(profile, scripted_llm, project, review_cache) as client:
        doc = open_buggy(client, project)
        await save_and_wait(client, doc)
        (token,) = client.progress_reports  # created with window/workDoneProgress/create before any $/progress
        values = client.progress_of(token)
        assert values[0]["kind"] == "begin" and values[0]["title"].startswith("Reviewing")
        assert values[0]["cancellable"] is True
        assert [v["kind"] for v in values[1:-1]] == ["report"] and values[1]["message"] == "review: 1 unit(s)"
        assert values[-1] == {"kind": "end", "message": "done"}


async def test_no_progress_for_a_client_that_does_not_declare_it(project: GitProject, review_cache: Path,
                                                                 scripted_llm: ScriptedLlm):
    scripted_llm.script(review_rule(findings((BUGGY_LINE, "masks the CRC", "error"))), challenge_rule())
    async with scripted_session("visual-studio-code+noprogress", scripted_llm, project, review_cache) as client:
        doc = open_buggy(client, project)
        client.save(doc)
        await client.review_published(doc.uri, doc.version)
        assert client.seen(types.PROGRESS) == [] and client.progress_reports == {}
