"""On-save review through the real server, as VS Code and Neovim 0.11 see it, against the scripted LLM in a real git
repository: only the function that changed since HEAD is sent to the model, its findings — cross-examined by
diagnosis, the claimed call run where the user allows it — arrive as diagnostics stamped with the saved version, an
unchanged save costs no request (the review cache, across restarts too), an untracked file is reviewed whole, and
an edit right after a save cancels the review in flight."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

import pytest
from lsprotocol import types

from metagpt_lsp.testing.lsp_support import PULL_PROFILES, PUSH_PROFILES, WAIT_S, EditorDocument
from metagpt_lsp.testing.sample_module import STATS
from metagpt_lsp.testing.scripted_editor import (
    NO_FINDINGS,
    RUNS_CODE_ON_SAVE,
    FeatureClient,
    GitProject,
    challenge_prompts,
    challenge_rule,
    findings,
    review_prompts,
    review_rule,
    scripted_session,
)
from metagpt_lsp.testing.scripted_llm import ScriptedLlm

REVIEW_TITLE = "Reviewing"
OLD_LINE = 'return format(zlib.crc32(data) & 0xFFFFFFFF, "08x")'
BUGGY_LINE = 'return format(zlib.crc32(data) & 0xFFFF, "08x")'
PROBLEM = "masks the CRC to its low 16 bits, so the checksum is wrong for most inputs"
CONFIRMED = challenge_rule("b'hello'", "'3610a686'", "'0000a686'")
"""Diagnosis agrees, with a call that really gives the claimed wrong value against ``BUGGY_LINE``."""
EVIDENCE = "`checksum(b'hello')` returns '0000a686', expected '3610a686'"
AGREED = "review and diagnosis agree"
UNCHANGED_BODIES = ("ordered[middle - 1]", "Counter(values)", "def median", "def render_table",
                    "fields[key.strip().lower()]", "def histogram", "squares / (len(values) - 1)")


async def review_diagnostics(client: FeatureClient, uri: str, pulls: bool, version: int,
                             since: int) -> list[types.Diagnostic]:
    """The review diagnostics the editor shows for ``version``: pushed after mark ``since``, or pulled (the review's
    diagnostics are in place before its progress ends)."""
    if pulls:
        items = (await client.pull(uri)).items
    else:
        items = (await client.review_published(uri, version, since)).diagnostics
    return [d for d in items if d.source == "metagpt-review"]


@pytest.mark.parametrize("profile", [PUSH_PROFILES[0], PULL_PROFILES[0]])  # VS Code (push), Neovim 0.11 (pull)
async def test_save_reviews_only_the_changed_function(profile: str, project: GitProject, review_cache: Path,
                                                      scripted_llm: ScriptedLlm):
    scripted_llm.script(review_rule(findings((BUGGY_LINE, PROBLEM, "error")), about="def checksum"),
                        review_rule(NO_FINDINGS), CONFIRMED)
    pulls = profile in PULL_PROFILES
    async with scripted_session(profile, scripted_llm, project, review_cache, RUNS_CODE_ON_SAVE) as client:
        doc = client.track(EditorDocument(project.uri("stats.py"), STATS))
        doc.open(client)
        start = doc.text.index(OLD_LINE)
        version = doc.edit(client, start, start + len(OLD_LINE), BUGGY_LINE)
        mark, published = client.progress_mark(), client.publish_mark()
        client.save(doc)
        await client.progress_end(REVIEW_TITLE, since=mark)

        prompts, challenges = review_prompts(scripted_llm), challenge_prompts(scripted_llm)
        assert len(prompts) == 1 and len(challenges) == 1 and len(scripted_llm.completions) == 2, prompts
        assert "def checksum(data):" in prompts[0] and BUGGY_LINE in prompts[0]
        assert not [body for body in UNCHANGED_BODIES if body in prompts[0]], "an unchanged function was sent"
        assert BUGGY_LINE in challenges[0] and PROBLEM in challenges[0]

        # The model said "error"; the evidence says Warning: the claimed call ran and gave the wrong value.
        (diagnostic,) = await review_diagnostics(client, doc.uri, pulls, version, published)
        assert diagnostic.message == f"{PROBLEM} ({EVIDENCE})"
        assert diagnostic.severity == types.DiagnosticSeverity.Warning
        assert diagnostic.code == "review"
        evidence = diagnostic.data.pop("evidence")
        assert diagnostic.data == {"cause": diagnostic.message, "quote": BUGGY_LINE, "unit": "checksum"}
        assert evidence["call"] == "checksum(b'hello')" and evidence["summary"] == EVIDENCE
        assert evidence["executed"] == {"status": "returned", "result": "'0000a686'", "verdict": "confirmed"}
        line = doc.text[:doc.text.index(BUGGY_LINE)].count("\n")
        assert (diagnostic.range.start.line, diagnostic.range.end.line) == (line, line)
        assert diagnostic.range.start.character == 4 and diagnostic.range.end.character == 4 + len(BUGGY_LINE)

        # Saving again without a change: the finding stays, and no request is sent.
        mark, published, sent = client.progress_mark(), client.publish_mark(), len(scripted_llm.requests)
        client.save(doc)
        await client.progress_end(REVIEW_TITLE, since=mark)
        assert len(scripted_llm.requests) == sent, "an unchanged save sent a request"
        assert [d.message for d in await review_diagnostics(client, doc.uri, pulls, version, published)] == [
            diagnostic.message]


async def test_reviews_are_remembered_across_restarts(project: GitProject, review_cache: Path,
                                                      scripted_llm: ScriptedLlm):
    scripted_llm.script(review_rule(findings((BUGGY_LINE, PROBLEM, "warning"))), CONFIRMED)
    for restart in range(2):
        async with scripted_session("visual-studio-code", scripted_llm, project, review_cache,
                                    RUNS_CODE_ON_SAVE) as client:
            doc = client.track(EditorDocument(project.uri("stats.py"), STATS))
            doc.open(client)
            start = doc.text.index(OLD_LINE)
            version = doc.edit(client, start, start + len(OLD_LINE), BUGGY_LINE)
            client.save(doc)
            published = await client.review_published(doc.uri, version)
            (diagnostic,) = [d for d in published.diagnostics if d.source == "metagpt-review"]
            assert diagnostic.severity == types.DiagnosticSeverity.Warning
        assert len(scripted_llm.completions) == 2, f"restart {restart}: the review was not remembered"


@pytest.mark.parametrize("where", ["untracked", "outside git"])
async def test_a_file_without_a_head_version_is_reviewed_whole(where: str, tmp_path: Path, project: GitProject,
                                                               review_cache: Path, scripted_llm: ScriptedLlm):
    scripted_llm.script(review_rule(findings(("counts = Counter(values)", "ignores ties", "info")),
                                    about="def most_common"), review_rule(NO_FINDINGS),
                        challenge_rule("['b', 'a', 'a', 'b']", "'b'", "'a'"))
    folder = project if where == "untracked" else GitProject(tmp_path / "loose")
    path = folder.write("fresh.py", STATS)
    async with scripted_session("visual-studio-code", scripted_llm, project, review_cache) as client:
        doc = client.track(EditorDocument(path.resolve().as_uri(), STATS))
        doc.open(client)
        await client.publish_for(doc.uri, 1)
        waiting = client.next_publish_for(doc.uri)
        client.save(doc)
        published = await asyncio.wait_for(waiting, WAIT_S)
        assert published.version == 1
        # Diagnosis agrees; nothing runs on save by default, so it is Information, and says so.
        assert [(d.message, d.severity) for d in published.diagnostics if d.source == "metagpt-review"] == [
            (f"ignores ties ({AGREED}: `most_common(['b', 'a', 'a', 'b'])` would give 'a', expected 'b' (not run))",
             types.DiagnosticSeverity.Information)]
        prompts = review_prompts(scripted_llm)
        functions = [ast.get_source_segment(STATS, node) for node in ast.parse(STATS).body
                     if isinstance(node, ast.FunctionDef)]
        assert len(prompts) == len(functions) == 11
        for function in functions:
            assert sum(function in prompt for prompt in prompts) == 1, function
        assert not any("# TODO: a function that parses the footer" in prompt for prompt in prompts)


async def test_an_edit_right_after_a_save_cancels_the_review(project: GitProject, review_cache: Path,
                                                            scripted_llm: ScriptedLlm):
    scripted_llm.script(review_rule(fault="hang", times=1), review_rule(findings((BUGGY_LINE, PROBLEM, "error"))),
                        CONFIRMED)
    async with scripted_session("visual-studio-code", scripted_llm, project, review_cache) as client:
        doc = client.track(EditorDocument(project.uri("stats.py"), STATS))
        doc.open(client)
        start = doc.text.index(OLD_LINE)
        saved = doc.edit(client, start, start + len(OLD_LINE), BUGGY_LINE)
        mark = client.progress_mark()
        client.save(doc)
        (hanging,) = await asyncio.wait_for(scripted_llm.wait_for_requests(1), WAIT_S)

        edited = doc.insert(client, doc.text.index("def checksum"), "# crc\n")
        await asyncio.wait_for(hanging.disconnected.wait(), WAIT_S)  # the LLM call behind the review was aborted
        end = await client.progress_end(REVIEW_TITLE, since=mark)
        assert end.value.get("message") == "cancelled"
        await client.publish_for(doc.uri, edited)
        await client.round_trip()
        assert not [d for p in client.publishes_for(doc.uri) if p.version == saved for d in p.diagnostics
                    if d.source == "metagpt-review"], "a review of the stale version was shown"

        # The next save reviews the new text and shows its finding.
        mark = client.progress_mark()
        client.save(doc)
        await client.progress_end(REVIEW_TITLE, since=mark)
        await client.round_trip()
        (latest,) = [p for p in client.publishes_for(doc.uri) if p.version == edited][-1:]
        assert [d.message for d in latest.diagnostics if d.source == "metagpt-review"] == [
            f"{PROBLEM} ({AGREED}: {EVIDENCE.replace('returns', 'would give')} (not run))"]


async def test_comments_layout_and_annotations_alone_send_no_request(project: GitProject, review_cache: Path,
                                                                      scripted_llm: ScriptedLlm):
    scripted_llm.script(review_rule(NO_FINDINGS))
    async with scripted_session("visual-studio-code", scripted_llm, project, review_cache) as client:
        doc = client.track(EditorDocument(project.uri("stats.py"), STATS))
        doc.open(client)
        cosmetic = (("def checksum(data):", "def checksum(data: bytes) -> str:"),
                    ("    return format(zlib.crc32", "    # eight hex digits, zero-padded\n    return format(\n"
                                                     "        zlib.crc32"),
                    ("def median(values):\n", "def median(values: list[float]) -> float:  # the middle one\n\n"))
        for old, new in cosmetic:
            start = doc.text.index(old)
            await save_and_wait(client, doc, doc.edit(client, start, start + len(old), new))
        assert scripted_llm.requests == [], "a change of comments, layout or annotations alone was sent for review"

        start = doc.text.index("0xFFFFFFFF")
        await save_and_wait(client, doc, doc.edit(client, start, start + len("0xFFFFFFFF"), "0xFFFF"))
        (prompt,) = review_prompts(scripted_llm)
        assert "def checksum(data: bytes) -> str:" in prompt and "def median" not in prompt


async def save_and_wait(client: FeatureClient, doc: EditorDocument, version: int) -> None:
    """Save ``version`` and wait until the review's diagnostics for it are published (after its syntax ones)."""
    await client.publish_for(doc.uri, version)
    mark = client.publish_mark()
    client.save(doc)
    future = client.expect(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS,
                           lambda p: p.uri == doc.uri and p.version == version, since=mark)
    await asyncio.wait_for(future, WAIT_S)


TABLE = '''"""A report table with a title and rows."""

import textwrap


class Table:
    """Rows of (name, value) with a title, rendered as aligned text."""

    width = 40
    title = "Nightly report"

    def __init__(self, rows):
        self.rows = list(rows)

    def render(self):
        """The title, then one line per row."""
        head = textwrap.shorten(self.title, self.width)
        body = [f"{name:<20}{value:>20}" for name, value in self.rows]
        return "\\n".join([head, *body])

    def total(self):
        """The sum of the values."""
        return sum(value for _name, value in self.rows)
''' + "\n".join(f"\n\ndef helper_{n}(value):\n    return value * {n} + len(str(value))" for n in range(40)) + "\n"


async def test_a_class_attribute_change_sends_those_lines_not_the_whole_class(tmp_path: Path, review_cache: Path,
                                                                              scripted_llm: ScriptedLlm):
    scripted_llm.script(review_rule(findings(("width = 0", "a zero width shortens every title to nothing",
                                              "error"))), challenge_rule())
    project = GitProject.create(tmp_path / "tables")
    project.commit({"table.py": TABLE})
    async with scripted_session("visual-studio-code", scripted_llm, project, review_cache) as client:
        doc = client.track(EditorDocument(project.uri("table.py"), TABLE))
        doc.open(client)
        start = doc.text.index("width = 40")
        version = doc.edit(client, start, start + len("width = 40"), "width = 0")
        mark = client.publish_mark()
        client.save(doc)
        (diagnostic,) = [d for d in (await client.review_published(doc.uri, version, mark)).diagnostics
                         if d.source == "metagpt-review"]
        assert diagnostic.data["unit"] == "class Table-level code"
        (prompt,) = review_prompts(scripted_llm)
        assert "width = 0" in prompt and "import textwrap" not in prompt, "only the imports it uses"
        assert "def render" not in prompt and "self.rows" not in prompt, "the whole class was sent"


MEDIAN_DOC = '"""The middle value of the sorted values (the mean of the two middle ones for an even count)."""'
MEDIAN_WITH_EXAMPLES = ('"""The middle value of the sorted values.\n\n    >>> median([1, 3, 2])\n    2\n'
                        '    >>> median([4, 1, 3, 2, 5])\n    3\n    """')


@pytest.mark.parametrize("options", [RUNS_CODE_ON_SAVE, None])
async def test_a_function_failing_its_own_example_is_a_warning_on_save_where_code_may_run(
        options, project: GitProject, review_cache: Path, scripted_llm: ScriptedLlm):
    scripted_llm.script(review_rule(NO_FINDINGS))
    async with scripted_session(PUSH_PROFILES[0], scripted_llm, project, review_cache, options) as client:
        doc = client.track(EditorDocument(project.uri("stats.py"), STATS))
        doc.open(client)
        start = doc.text.index(MEDIAN_DOC)
        doc.edit(client, start, start + len(MEDIAN_DOC), MEDIAN_WITH_EXAMPLES)
        start = doc.text.index("return ordered[middle]")
        version = doc.edit(client, start, start + len("return ordered[middle]"), "return ordered[middle + 1]")
        mark, published = client.progress_mark(), client.publish_mark()
        client.save(doc)
        await client.progress_end(REVIEW_TITLE, since=mark)
        if options is None:  # on save, code runs only where the user allowed it: the review ends with nothing shown
            shown = [d for p in client.seen(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)[published:]
                     for d in p.diagnostics if d.source == "metagpt-review"]
        else:
            shown = await review_diagnostics(client, doc.uri, False, version, published)
    assert len(review_prompts(scripted_llm)) == 1, "the examples cost no request"
    if options is None:
        assert shown == []
        return
    (diagnostic,) = shown
    assert diagnostic.severity == types.DiagnosticSeverity.Warning and diagnostic.code == "examples"
    assert "`median([1, 3, 2])` gives 3, its docstring says 2" in diagnostic.message
    line = doc.text[:doc.text.index("return ordered[middle + 1]")].count("\n")
    assert diagnostic.range.start.line == line, "placed on the line a one-token repair points to"
