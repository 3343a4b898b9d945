"""When a fix may run the user's code, through the real server: by default an explicit "Explain and fix" runs
examples in the sandbox (so diagnosis is asked to write them); a workspace the client calls untrusted never does."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from lsprotocol import types

from metagpt_lsp.testing.lsp_support import WAIT_S, EditorDocument
from metagpt_lsp.testing.sample_module import STATS
from metagpt_lsp.testing.scripted_editor import ASKS_CAUSE, ASKS_FIX, GitProject, scripted_session
from metagpt_lsp.testing.scripted_llm import Rule, ScriptedLlm

GOOD_LINE = 'return format(zlib.crc32(data) & 0xFFFFFFFF, "08x")'
BUGGY_LINE = 'return format(zlib.crc32(data) & 0xFFFF, "08x")'
EXPLAIN = json.dumps({"cause": "The mask keeps 16 bits.", "line": BUGGY_LINE,
                      "examples": [{"call": "checksum(b'abc')", "returns": "'352441c2'"}]})
FIX = f"```python\n{GOOD_LINE}\n```\n"
ASKS_EXAMPLES = "only literal arguments"


@pytest.mark.parametrize(("options", "runs"), [(None, True), ({"workspaceTrusted": False}, False),
                                                ({"team": {"runCode": "never"}}, False)])
async def test_a_fix_runs_examples_only_where_allowed(options, runs: bool, project: GitProject, review_cache: Path,
                                                      scripted_llm: ScriptedLlm):
    scripted_llm.script(Rule(EXPLAIN, last_user=ASKS_CAUSE), Rule(FIX, last_user=ASKS_FIX))
    async with scripted_session("visual-studio-code", scripted_llm, project, review_cache, options) as client:
        doc = client.track(EditorDocument(project.uri("stats.py"), STATS))
        doc.open(client)
        start = doc.text.index(GOOD_LINE)
        doc.edit(client, start, start + len(GOOD_LINE), BUGGY_LINE)
        at = doc.text.index(BUGGY_LINE)
        where = doc.range_of(at, at + len(BUGGY_LINE))
        diagnostic = types.Diagnostic(range=where, message="wrong checksum", source="pytest",
                                      severity=types.DiagnosticSeverity.Error)
        actions = await asyncio.wait_for(client.text_document_code_action_async(types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=doc.uri), range=where,
            context=types.CodeActionContext(diagnostics=[diagnostic]))), WAIT_S) or []
        (fix,) = [a for a in actions if isinstance(a, types.CodeAction) and a.title.startswith("Explain and fix")]
        resolved = await asyncio.wait_for(client.code_action_resolve_async(fix), WAIT_S)
        assert resolved.edit is not None
    (explain,) = [r.last_user_message for r in scripted_llm.completions if ASKS_CAUSE in r.last_user_message]
    assert (ASKS_EXAMPLES in explain) is runs
