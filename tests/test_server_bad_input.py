"""Bad input never takes the server down: each case gets a clear ``window/logMessage``, the server's text stays equal
to the editor's, diagnostics afterwards are right, and the next request is answered.

"The server's text equals the editor's" is checked through what the server publishes: after the odd message, the
diagnostics for the document must equal those for the editor's text opened fresh under another URI, and the text is
chosen so that any drift between the two moves or changes them. Malformed JSON-RPC is written as raw bytes to the
server's stdin; everything read back from stdout must be well-formed LSP frames.
"""

from __future__ import annotations

import itertools

from lsprotocol import types

from lsp_support import EditorClient, EditorDocument, editor_session, summary
from raw_jsonrpc import RawServer, frame

PROFILE = "visual-studio-code"
_fresh = itertools.count(1)


async def diagnostics_now(client: EditorClient, doc: EditorDocument) -> list:
    return summary((await client.publish_for(doc.uri, doc.version)).diagnostics)


async def diagnostics_of_fresh_copy(client: EditorClient, doc: EditorDocument) -> list:
    """What the server reports for the editor's text when it is opened from scratch."""
    copy = EditorDocument(f"file:///fresh-copies/copy{next(_fresh)}.py", doc.text, doc.language_id)
    copy.open(client)
    found = summary((await client.publish_for(copy.uri, 1)).diagnostics)
    copy.close(client)
    return found


async def assert_in_step(client: EditorClient, doc: EditorDocument) -> list:
    """The document's published diagnostics equal those of a fresh copy of the editor's text; returns them."""
    now = await diagnostics_now(client, doc)
    assert now == await diagnostics_of_fresh_copy(client, doc)
    return now


async def test_range_past_the_end_is_clamped_logged_and_text_stays_in_step():
    async with editor_session(PROFILE) as client:
        doc = EditorDocument("file:///project/past_end.py", "x = 1\ny = [2, 3]\n")
        doc.open(client)
        assert await diagnostics_now(client, doc) == []

        # A range whose line lies beyond the document: the editor's model (and ours) clamps it to the end.
        past_lines = types.Range(start=types.Position(line=10, character=0), end=types.Position(line=12, character=4))
        doc.text += "z = (4,"
        doc.send(client, [types.TextDocumentContentChangePartial(range=past_lines, text="z = (4,")])
        await client.log_line("past the end", f"version {doc.version}")
        assert await assert_in_step(client, doc) == [(2, 6, 2, 7, 'expected ")" after ","')]

        # A character beyond the end of an existing line: clamped to the end of that line.
        past_column = types.Position(line=0, character=99)
        doc.text = doc.text.replace("x = 1", "x = 1 + 'a")
        doc.send(client, [types.TextDocumentContentChangePartial(
            range=types.Range(start=past_column, end=past_column), text=" + 'a")])
        await client.log_line("past the end", f"version {doc.version}")
        assert (0, 8, 0, 10, "unterminated string") in await assert_in_step(client, doc)

        # Normal editing carries on from the clamped text.
        doc.edit(client, doc.text.index(" + 'a"), doc.text.index(" + 'a") + 5, "")
        doc.insert(client, len(doc.text), ")\n")
        assert await assert_in_step(client, doc) == []


async def test_version_that_goes_backwards_is_applied_and_diagnostics_follow_the_text():
    async with editor_session(PROFILE) as client:
        doc = EditorDocument("file:///project/versions.py", "total = 0\n")
        doc.open(client)
        assert await diagnostics_now(client, doc) == []
        doc.edit(client, 0, 0, "for x in range(3)\n    ", version=5)
        assert len(await diagnostics_now(client, doc)) == 1

        colon = doc.text.index(")") + 1
        doc.edit(client, colon, colon, ":", version=3)
        await client.log_line("version went from 5 to 3")
        published = await client.publish_for(doc.uri, 3)
        assert summary(published.diagnostics) == [], "diagnostics of version 5 shown for the text of version 3"
        assert await assert_in_step(client, doc) == []

        doc.insert(client, len(doc.text), "print(total\n")
        assert doc.version == 4
        assert len(await assert_in_step(client, doc)) == 1


async def test_change_for_a_document_never_opened_is_ignored_and_logged():
    async with editor_session(PROFILE) as client:
        ghost = EditorDocument("file:///project/ghost.py", "def f(:\n")
        ghost.send(client, [types.TextDocumentContentChangePartial(range=ghost.range_of(0, 0), text="x = (")])
        await client.log_line("ghost.py", "not open")
        await client.round_trip()
        assert client.publishes_for(ghost.uri) == [], "diagnostics published for a document that is not open"

        ghost = EditorDocument("file:///project/ghost.py", "def f(:\n")
        ghost.open(client)
        assert len(await assert_in_step(client, ghost)) >= 1

        ghost.close(client)
        ghost.close(client)  # closing twice is just as harmless
        await client.log_line("close for a document that is not open")


async def test_ten_megabyte_file_is_kept_as_text_and_the_server_stays_responsive():
    async with editor_session(PROFILE) as client:
        line = "value_{0:07d} = compute({0}, 'some text to make the line longer')\n"
        text = "".join(line.format(number) for number in range(10 * 1024 * 1024 // len(line.format(0)) + 1))
        assert len(text.encode()) >= 10 * 1024 * 1024
        big = EditorDocument("file:///project/big.py", text)
        big.open(client)
        notice = await client.popup("maxParseBytes")
        assert "no syntax checks" in notice.message
        await client.log_line("big.py", "is over syntax.maxParseBytes")
        assert await diagnostics_now(client, big) == []

        big.insert(client, len(big.text), "broken = (\n")  # no syntax checks over the limit: nothing to report
        assert await diagnostics_now(client, big) == []

        # The next request is answered, and other documents are checked as usual.
        small = EditorDocument("file:///project/small.py", "if True print(1)\n")
        small.open(client)
        assert len(await diagnostics_now(client, small)) == 1

        # Cut the big file down to a few lines with one incremental edit: its text must still be the editor's.
        keep_head = big.text.index("value_0000003")
        keep_tail = big.text.rindex("value_")
        big.edit(client, keep_head, keep_tail, "")
        assert len(big.text) < 1000
        problems = await assert_in_step(client, big)
        assert [line for line, *_ in problems] == [4], "the one error is on the last line, 'broken = ('"


async def test_nul_characters_are_kept_logged_and_reported_consistently():
    async with editor_session(PROFILE) as client:
        doc = EditorDocument("file:///project/nul.py", "a = 1\nb = 'x\x00y'\nc = (a,\n")
        doc.open(client)
        await client.log_line("nul.py", "NUL")
        with_nul = await assert_in_step(client, doc)
        assert with_nul and with_nul[-1][0] == 2, "the real error on line 3 must still be found"

        doc.insert(client, doc.text.index("\x00"), "\x00\x00")
        await client.log_line("nul.py", f"version {doc.version}", "NUL")
        await assert_in_step(client, doc)

        doc.edit(client, doc.text.index("x"), doc.text.index("y"), "x")
        doc.insert(client, len(doc.text) - 1, ")")
        assert await assert_in_step(client, doc) == []
        assert "\x00" not in doc.text


async def test_unknown_language_id_is_plain_text_unless_the_extension_is_known():
    async with editor_session(PROFILE) as client:
        notes = EditorDocument("file:///project/notes.klingon", "def f(:\n", language_id="klingon")
        notes.open(client)
        await client.log_line("notes.klingon", "'klingon'", "plain text")
        assert await diagnostics_now(client, notes) == []
        notes.insert(client, 0, "still ( not code\n")
        assert await diagnostics_now(client, notes) == []

        script = EditorDocument("file:///project/script.py", "def f(:\n", language_id="klingon")
        script.open(client)
        assert len(await diagnostics_now(client, script)) == 1, "the .py extension names the language"


# -- malformed JSON-RPC, written as raw bytes -----------------------------------------------------------------

DID_OPEN = {"textDocument": {"uri": "file:///raw/a.py", "languageId": "python", "version": 1, "text": "x = (1,\n"}}


async def test_malformed_json_rpc_is_logged_answered_and_survived():
    server = await RawServer.start()
    try:
        await server.initialize()
        await server.notify(types.TEXT_DOCUMENT_DID_OPEN, DID_OPEN)
        first = await server.until(lambda m: m.get("method") == types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        assert first["params"]["version"] == 1 and len(first["params"]["diagnostics"]) == 1

        # A frame whose body is not JSON: a parse error (null id) and a log line.
        await server.send(frame(body=b'{"jsonrpc": "2.0", "id": 2, "method": "textDocument/diagnostic", '))
        parse_error = await server.until(lambda m: "error" in m and m.get("id") is None)
        assert parse_error["error"]["code"] == -32700
        await server.until(lambda m: m.get("method") == types.WINDOW_LOG_MESSAGE and "not valid JSON" in
                           m["params"]["message"])

        # A request with valid JSON but the wrong params: an InvalidParams answer to *that* id, naming the field.
        await server.request(3, types.TEXT_DOCUMENT_DIAGNOSTIC, {"textDocument": 42})
        answer = await server.response(3)
        assert answer["error"]["code"] == -32602
        assert "textDocument/diagnostic" in answer["error"]["message"]
        assert "textDocument" in answer["error"]["message"]

        # A notification with the wrong params: nothing to answer, a log line naming the method and fields.
        await server.notify(types.TEXT_DOCUMENT_DID_CHANGE, {"textDocument": {"uri": "file:///raw/a.py"},
                                                              "contentChanges": [{"text": 7}]})
        logged = await server.until(lambda m: m.get("method") == types.WINDOW_LOG_MESSAGE
                                    and "textDocument/didChange" in m["params"]["message"])
        assert "version" in logged["params"]["message"]

        # JSON that is not JSON-RPC at all, and a request for a method nobody provides.
        await server.send(frame([1, 2, 3]), frame({"id": 4, "method": "shutdown"}))
        assert (await server.response(4))["error"]["code"] == -32600
        await server.request(5, "metagpt/noSuchMethod", {})
        assert (await server.response(5))["error"]["code"] == -32601

        # The document was not touched by any of it, and the next valid messages work.
        await server.request(6, types.TEXT_DOCUMENT_DIAGNOSTIC, {"textDocument": {"uri": "file:///raw/a.py"}})
        assert (await server.response(6))["result"]["kind"] == "full"
        await server.notify(types.TEXT_DOCUMENT_DID_CHANGE, {
            "textDocument": {"uri": "file:///raw/a.py", "version": 2},
            "contentChanges": [{"range": {"start": {"line": 0, "character": 7}, "end": {"line": 0, "character": 7}},
                                "text": ")"}]})
        fixed = await server.until(lambda m: m.get("method") == types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS
                                   and m["params"]["version"] == 2)
        assert fixed["params"]["diagnostics"] == []
        assert server.process.returncode is None
    finally:
        assert await server.stop() == 0


async def test_garbage_between_frames_does_not_desynchronise_the_stream():
    server = await RawServer.start()
    try:
        await server.initialize()
        not_utf8 = frame(body=b'{"jsonrpc": "2.0", "method": "x\xc3("}')
        await server.send(b"this is not a header\r\n\r\n", b"\r\n", not_utf8)
        await server.until(lambda m: m.get("method") == types.WINDOW_LOG_MESSAGE and "UTF-8" in m["params"]["message"])
        await server.request(2, types.TEXT_DOCUMENT_DIAGNOSTIC, {"textDocument": {"uri": "file:///raw/none.py"}})
        assert (await server.response(2))["result"] == {"kind": "full", "items": []}
    finally:
        assert await server.stop() == 0

