"""End to end through pytest-lsp: text sync and instant syntax diagnostics as Neovim 0.11 and VS Code would see them.

Push clients (VS Code's preset; Neovim's with pull support removed) get ``publishDiagnostics`` stamped with each
version; pull clients (Neovim 0.11's preset declares ``textDocument.diagnostic``; VS Code's with it added) ask with
``textDocument/diagnostic`` and are never pushed to. Positions go through UTF-16 and UTF-8 with emoji and CJK text.
"""

from __future__ import annotations

import pytest
import pytest_lsp
from lsprotocol import types

from metagpt_lsp.testing.lsp_support import (
    PULL_PROFILES,
    PUSH_PROFILES,
    SERVER,
    EditorClient,
    EditorDocument,
    editor_session,
    initialize_params,
    summary,
)

BROKEN = 'def greet(name)\n    return f"hello {name}"\n'
"""Missing ":" after the parameter list: one error on the ")"."""


async def _start(client: EditorClient, profile: str):
    await client.initialize_session(initialize_params(profile))
    yield
    assert not client.handler_errors, client.handler_errors
    await client.shutdown_session()


@pytest_lsp.fixture(config=SERVER, params=PUSH_PROFILES)
async def push_client(lsp_client: EditorClient, request):
    async for _ in _start(lsp_client, request.param):
        yield


@pytest_lsp.fixture(config=SERVER, params=PULL_PROFILES)
async def pull_client(lsp_client: EditorClient, request):
    async for _ in _start(lsp_client, request.param):
        yield


# -- push ---------------------------------------------------------------------------------------------------------

async def test_push_open_broken_file_then_type_the_fix_then_close(push_client: EditorClient):
    doc = EditorDocument("file:///project/greet.py", BROKEN)
    doc.open(push_client)

    opened = await push_client.publish_for(doc.uri, 1)
    assert len(opened.diagnostics) == 1
    problem = opened.diagnostics[0]
    assert problem.message == 'expected ":" after ")"'
    assert (problem.range.start.line, problem.range.start.character) == (0, 14)
    assert (problem.range.end.line, problem.range.end.character) == (0, 15)
    assert problem.source == "metagpt-lsp"
    assert problem.severity == types.DiagnosticSeverity.Error

    fixed_version = doc.insert(push_client, doc.text.index(")") + 1, ":")
    assert summary((await push_client.publish_for(doc.uri, fixed_version)).diagnostics) == []

    doc.close(push_client)
    closed = await push_client.publish_for(doc.uri, None)
    assert summary(closed.diagnostics) == []


async def test_push_every_keystroke_gets_its_own_version(push_client: EditorClient):
    doc = EditorDocument("file:///project/typing.py", "x = 1\n")
    doc.open(push_client)
    assert summary((await push_client.publish_for(doc.uri, 1)).diagnostics) == []

    typed = 'print("hi", x)'
    results = {}
    for offset, char in enumerate(typed):
        version = doc.insert(push_client, len("x = 1\n") + offset, char)
        results[doc.text] = await push_client.publish_for(doc.uri, version)

    assert summary(results['x = 1\nprint("hi", x)'].diagnostics) == []
    for text in ('x = 1\nprint(', 'x = 1\nprint("h', 'x = 1\nprint("hi", x'):
        assert results[text].diagnostics, f"no syntax error reported for {text!r}"
    assert [p.version for p in push_client.publishes_for(doc.uri)] == list(range(1, len(typed) + 2))


async def test_push_several_changes_in_one_notification_apply_in_order(push_client: EditorClient):
    doc = EditorDocument("file:///project/batch.py", "a = (1,\nb = 2\n")
    doc.open(push_client)
    assert summary((await push_client.publish_for(doc.uri, 1)).diagnostics)

    # Two changes in one didChange: the second range is in the text *after* the first change.
    first = types.TextDocumentContentChangePartial(range=doc.range_of(6, 7), text=",)")  # "a = (1,)"
    doc.text = doc.text[:6] + ",)" + doc.text[7:]
    second = types.TextDocumentContentChangePartial(range=doc.range_of(doc.text.index("2"), doc.text.index("2") + 1),
                                                     text="[2]")
    doc.text = doc.text.replace("2", "[2]")
    version = doc.send(push_client, [first, second])

    assert doc.text == "a = (1,)\nb = [2]\n"
    assert summary((await push_client.publish_for(doc.uri, version)).diagnostics) == []

    version = doc.replace_all(push_client, "def f(:\n")
    assert (await push_client.publish_for(doc.uri, version)).diagnostics


async def test_push_documents_with_the_same_text_stay_independent(push_client: EditorClient):
    """A file and its diff view have the same text (the server shares their tree); editing one leaves the other."""
    original = EditorDocument("file:///project/greet.py", BROKEN)
    diff_view = EditorDocument("git:/project/greet.py?HEAD", BROKEN)
    original.open(push_client)
    diff_view.open(push_client)
    first = summary((await push_client.publish_for(original.uri, 1)).diagnostics)
    assert first == summary((await push_client.publish_for(diff_view.uri, 1)).diagnostics) != []

    original.insert(push_client, original.text.index(")") + 1, ":")
    assert summary((await push_client.publish_for(original.uri, 2)).diagnostics) == []
    diff_view.insert(push_client, len(diff_view.text), "y = 1\n")
    assert summary((await push_client.publish_for(diff_view.uri, 2)).diagnostics) == first


# -- pull ---------------------------------------------------------------------------------------------------------

async def test_pull_reports_result_ids_unchanged_and_never_pushes(pull_client: EditorClient):
    doc = EditorDocument("file:///project/greet.py", BROKEN)
    doc.open(pull_client)

    first = await pull_client.pull(doc.uri)
    assert first.kind == "full"
    assert summary(first.items) == [(0, 14, 0, 15, 'expected ":" after ")"')]
    assert first.items[0].source == "metagpt-lsp"
    assert first.result_id

    again = await pull_client.pull(doc.uri, previous_result_id=first.result_id)
    assert again.kind == "unchanged"
    assert again.result_id == first.result_id

    doc.insert(pull_client, doc.text.index(")") + 1, ":")
    after_fix = await pull_client.pull(doc.uri, previous_result_id=first.result_id)
    assert after_fix.kind == "full"
    assert summary(after_fix.items) == []
    assert after_fix.result_id != first.result_id

    doc.insert(pull_client, len(doc.text), "oops(\n")
    broken_again = await pull_client.pull(doc.uri, previous_result_id=after_fix.result_id)
    assert broken_again.kind == "full" and broken_again.items
    assert broken_again.result_id not in (first.result_id, after_fix.result_id)

    doc.close(pull_client)
    after_close = await pull_client.pull(doc.uri, previous_result_id=broken_again.result_id)
    assert after_close.kind == "full" and summary(after_close.items) == []

    await pull_client.round_trip()
    assert pull_client.published == [], "a pull client must never get publishDiagnostics"


# -- positions ----------------------------------------------------------------------------------------------------

ENCODINGS = [
    ("visual-studio-code", "utf-16", False),
    ("visual-studio-code+utf8", "utf-8", False),
    ("neovim@v0.11.0", "utf-8", True),  # Neovim offers utf-8 first
]


@pytest.mark.parametrize(("profile", "encoding", "pulls"), ENCODINGS)
async def test_positions_with_emoji_and_cjk(profile: str, encoding: str, pulls: bool):
    async with editor_session(profile) as client:
        assert client.initialize_result.capabilities.position_encoding == encoding
        text = 't = ("😀中文"?, 1)\nu = "한국어 🎉"\n'
        doc = EditorDocument("file:///project/unicode.py", text, encoding=encoding)

        async def current() -> list:
            if pulls:
                return list((await client.pull(doc.uri)).items)
            return list((await client.publish_for(doc.uri, doc.version)).diagnostics)

        doc.open(client)
        stray = doc.text.index("?")
        expected = doc.range_of(stray, stray + 1)
        assert summary(await current()) == [(0, expected.start.character, 0, expected.end.character,
                                             'unexpected "?"')]
        # 11 UTF-16 code units or 17 UTF-8 bytes before the "?": the emoji is 2 units / 4 bytes.
        assert expected.start.character == {"utf-16": 11, "utf-8": 17}[encoding]

        # Delete exactly the "?": one unit off either way would break the string or delete the comma.
        doc.edit(client, stray, stray + 1, "")
        assert await current() == []

        # Type after the CJK and emoji on line 2; the new error's range must land on the ")" typed last.
        for char in ' + "🎉" )':
            doc.insert(client, len(doc.text) - 1, char)
        closing = doc.text.rindex(")")
        where = doc.range_of(closing, closing + 1)
        assert summary(await current()) == [(1, where.start.character, 1, where.end.character, 'unexpected ")"')]
        assert where.start.character == {"utf-16": 20, "utf-8": 30}[encoding]
