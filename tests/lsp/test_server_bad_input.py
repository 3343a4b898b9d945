"""Bad input never takes the server down: each case gets a clear ``window/logMessage``, the server's text stays equal
to the editor's, diagnostics afterwards are right, and the next request is answered.

"The server's text equals the editor's" is checked through what the server publishes: after the odd message, the
diagnostics for the document must equal those for the editor's text opened fresh under another URI, and the text is
chosen so that any drift between the two moves or changes them. Malformed JSON-RPC is written as raw bytes to the
server's stdin; everything read back from stdout must be well-formed LSP frames.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging

from lsprotocol import types

from metagpt_lsp.testing.lsp_support import EditorClient, EditorDocument, editor_session, summary
from metagpt_lsp.testing.raw_jsonrpc import RawServer, frame
from metagpt_lsp.testing.scripted_llm import Rule, ScriptedLlm

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



# -- JSON-RPC as the specification says: exactly one answer per request, with the code it names ----------------------

DIAGNOSTIC_REQUEST = {"textDocument": {"uri": "file:///raw/a.py"}}
AT_START = {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 1}}


def is_error(answer: dict, msg_id, code: int) -> bool:
    return answer.get("id") == msg_id and answer.get("error", {}).get("code") == code


async def test_an_absurd_content_length_is_refused_logged_and_the_connection_survives():
    server = await RawServer.start()
    try:
        await server.initialize()
        for length in (b"100000000000000000", b"9" * 5000, b"%d" % (64 * 1024 * 1024 + 1)):
            # The body the frame announced never comes: the next frame follows it at once, without a line break.
            await server.send(b"Content-Length: " + length + b"\r\n\r\n" + b'{"jsonrpc": "2.0", "id": 2}')
            assert await server.answers_until_barrier() == []
            await server.log_line(length[:20].decode(), "Content-Length", "over the limit of 64 MiB")
        await server.request(3, types.TEXT_DOCUMENT_DIAGNOSTIC, DIAGNOSTIC_REQUEST)
        assert (await server.response(3))["result"]["kind"] == "full"
    finally:
        assert await server.stop() == 0


async def test_objects_with_a_jsonrpc_key_inside_params_are_data_not_messages():
    server = await RawServer.start()
    try:
        await server.initialize()
        await server.notify(types.TEXT_DOCUMENT_DID_OPEN, DID_OPEN)
        # Objects another tool or a command may well carry, that look like JSON-RPC messages (some malformed ones).
        impostors = [{"jsonrpc": "2.0", "id": 77, "method": types.TEXT_DOCUMENT_HOVER, "params": 1},
                     {"jsonrpc": "2.0", "id": 78, "method": types.SHUTDOWN}, {"jsonrpc": "2.0"},
                     {"jsonrpc": "2.0", "id": 79, "result": None}]
        diagnostic = {"range": AT_START, "message": "from another tool", "source": "other", "data": impostors[0]}
        await server.request(2, types.TEXT_DOCUMENT_CODE_ACTION, {
            "textDocument": {"uri": "file:///raw/a.py"}, "range": AT_START, "context": {"diagnostics": [diagnostic]}})
        await server.request(3, types.WORKSPACE_EXECUTE_COMMAND, {"command": "metagpt.status",
                                                                   "arguments": impostors})
        answers = await server.answers_until_barrier()
        assert [answer["id"] for answer in answers] == [2, 3], answers
        assert isinstance(answers[0]["result"], list) and isinstance(answers[1]["result"], dict)
        titles = [action["title"] for action in answers[0]["result"]]
        assert any("Explain and fix" in title for title in titles), titles
    finally:
        assert await server.stop() == 0


async def test_json_that_python_cannot_read_gets_a_parse_error_and_the_server_carries_on():
    server = await RawServer.start()
    try:
        await server.initialize()
        deep = "[" * 100_000 + "]" * 100_000
        await server.send(frame(body=b'{"jsonrpc": "2.0", "id": 2, "method": "x", "params": %s}' % deep.encode()))
        await server.send(frame(body=b'{"jsonrpc": "2.0", "id": 3, "method": "x", "params": [%s]}' % (b"7" * 5000)))
        answers = await server.answers_until_barrier()
        assert [answer["error"]["code"] for answer in answers] == [-32700, -32700], answers
        assert [answer["id"] for answer in answers] == [None, None]
        assert "nested too deeply" in answers[0]["error"]["message"]
        assert "too many digits" in answers[1]["error"]["message"]
    finally:
        assert await server.stop() == 0


async def test_every_request_gets_exactly_one_answer_with_the_code_the_spec_names():
    server = await RawServer.start()
    try:
        await server.initialize()
        did_close = {"textDocument": {"uri": "file:///raw/a.py"}}
        cases = [  # (message, the one answer expected: (id, code), or None for silence)
            ({"jsonrpc": "2.0", "id": 2, "method": types.TEXT_DOCUMENT_DID_CLOSE, "params": did_close}, (2, -32601)),
            ({"jsonrpc": "1.0", "id": 3, "method": types.TEXT_DOCUMENT_DIAGNOSTIC, "params": DIAGNOSTIC_REQUEST},
             (3, -32600)),
            ({"id": 4, "method": types.TEXT_DOCUMENT_DIAGNOSTIC, "params": DIAGNOSTIC_REQUEST}, (4, -32600)),
            ({"jsonrpc": "2.0", "id": 5.5, "method": types.TEXT_DOCUMENT_DIAGNOSTIC}, (None, -32600)),
            ({"jsonrpc": "2.0", "id": [6], "method": types.TEXT_DOCUMENT_DIAGNOSTIC}, (None, -32600)),
            ({"jsonrpc": "2.0", "id": 7, "method": 7}, (7, -32600)),
            ({"jsonrpc": "2.0", "id": 8, "method": types.TEXT_DOCUMENT_DIAGNOSTIC, "params": 8}, (8, -32602)),
            ({"jsonrpc": "2.0", "id": 9, "method": types.TEXT_DOCUMENT_DIAGNOSTIC}, (9, -32602)),
            ({"jsonrpc": "2.0", "id": "ten", "method": "metagpt/noSuchMethod"}, ("ten", -32601)),
            ({"jsonrpc": "2.0", "method": "metagpt/noSuchNotification", "params": {}}, None),
            ({"jsonrpc": "2.0", "method": "$/somethingOptional"}, None),
            ({"jsonrpc": "2.0", "method": types.SHUTDOWN}, None),  # a request without an id is not run
            ({"jsonrpc": "2.0", "id": "no-such-request", "result": 1}, None),  # an answer nobody asked for
            ({"jsonrpc": "2.0", "result": 1}, None),
        ]
        for message, expected in cases:
            await server.send(frame(message))
            answers = await server.answers_until_barrier()
            if expected is None:
                assert answers == [], f"{message} was answered: {answers}"
            else:
                assert len(answers) == 1 and is_error(answers[0], *expected), f"{message} got {answers}"
                assert "data" not in answers[0]["error"]
        wrong_param = next(m for m in server.received if m.get("id") == 9)
        assert "textDocument" in wrong_param["error"]["message"], "the InvalidParams answer names the field"
        assert b"Traceback" not in server.stderr
    finally:
        assert await server.stop() == 0, "a shutdown sent without an id was run"


async def test_no_answer_and_no_log_line_carries_a_python_stack():
    server = await RawServer.start()
    try:
        await server.initialize()
        # Commands whose handlers fail on these arguments: the answer names the error, never the stack.
        await server.request(2, types.WORKSPACE_EXECUTE_COMMAND, {"command": "metagpt.explainAndFix",
                                                                   "arguments": [[1]]})
        await server.request(3, types.WORKSPACE_EXECUTE_COMMAND, {"command": "metagpt.generate", "arguments": [7]})
        answers = await server.answers_until_barrier()
        assert [answer["id"] for answer in answers] == [2, 3]
        failures = [answer["error"] for answer in answers if "error" in answer]
        assert any(error["code"] == -32603 for error in failures), f"no handler failed, nothing checked: {answers}"
        for error in failures:
            assert "data" not in error and "Traceback" not in error["message"] and 'File "' not in error["message"]
        await server.send(frame(body=b'{"jsonrpc": "2.0", "id": 4, '))
        await server.answers_until_barrier()
    finally:
        assert await server.stop() == 0
    assert b"Traceback" not in server.stderr, server.stderr.decode(errors="replace")[-2000:]


async def test_lifecycle_before_initialize_after_shutdown_and_the_exit_code():
    server = await RawServer.start()
    try:
        await server.request(1, types.TEXT_DOCUMENT_DIAGNOSTIC, DIAGNOSTIC_REQUEST)
        answer = await server.response(1)
        assert answer["error"]["code"] == -32002 and "initialize" in answer["error"]["message"]
        await server.notify(types.TEXT_DOCUMENT_DID_OPEN, DID_OPEN)  # dropped: not yet initialized
        await server.request(2, types.INITIALIZE, {"processId": None, "rootUri": None, "capabilities": {}})
        assert "capabilities" in (await server.response(2))["result"]
        await server.notify(types.INITIALIZED, {})
        await server.request(3, types.TEXT_DOCUMENT_DIAGNOSTIC, DIAGNOSTIC_REQUEST)
        assert (await server.response(3))["result"]["items"] == [], "the didOpen before initialize was not dropped"

        await server.request(4, types.SHUTDOWN)
        assert (await server.response(4)) == {"jsonrpc": "2.0", "id": 4, "result": None}
        await server.request(5, types.TEXT_DOCUMENT_DIAGNOSTIC, DIAGNOSTIC_REQUEST)
        await server.request(6, types.SHUTDOWN)
        await server.notify(types.TEXT_DOCUMENT_DID_OPEN, DID_OPEN)
        await server.request(7, "metagpt/noSuchMethod")
        for msg_id in (5, 6, 7):
            assert is_error(await server.response(msg_id), msg_id, -32600)
        await server.notify(types.EXIT)
        assert await server.exit_status() == 0
        assert [m for m in server.received if "method" not in m and m["id"] not in (1, 2, 3, 4, 5, 6, 7)] == []
        assert not any(m.get("method") == types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS for m in server.received)
    finally:
        if server.process.returncode is None:
            server.process.kill()
            await server.exit_status()


async def test_exit_without_shutdown_exits_with_status_1():
    server = await RawServer.start()
    await server.initialize()
    await server.notify(types.EXIT)
    assert await server.exit_status() == 1


async def test_a_request_the_editor_never_answers_times_out_and_blocks_nothing():
    server = await RawServer.start(env={"METAGPT_LSP_CLIENT_ANSWER_TIMEOUT_S": "1"})
    try:
        await server.initialize({"workspace": {"configuration": True}})
        asked = await server.first(lambda m: m.get("method") == types.WORKSPACE_CONFIGURATION)
        assert await server.answers_until_barrier() == [], "the server answers while its own request waits"
        await server.log_line("did not answer workspace/configuration within 1 s")
        await server.send(frame({"jsonrpc": "2.0", "id": asked["id"], "result": [None]}))  # too late: ignored
        assert await server.answers_until_barrier() == []
        assert not any("internal error" in line for line in server.log_messages())
    finally:
        assert await server.stop() == 0


async def test_shutdown_answers_and_exits_cleanly_whatever_is_in_flight():
    """The editor answers neither the fix's workspace/applyEdit nor workspace/configuration: shutdown still answers
    null, once, and the server exits with 0 (it used to answer -32603 "dictionary changed size during iteration")."""
    fix = "```python\ndef f():\n    pass\n```\n"
    async with ScriptedLlm([Rule(fix)]) as llm:  # every call answered with the fixed function
        server = await RawServer.start(env={"OPENAI_BASE_URL": llm.base_url, "OPENAI_API_KEY": "sk-scripted"})
        try:
            await server.initialize({"workspace": {"configuration": True, "applyEdit": True}})
            await server.first(lambda m: m.get("method") == types.WORKSPACE_CONFIGURATION)  # never answered
            await server.notify(types.TEXT_DOCUMENT_DID_OPEN, {"textDocument": {
                "uri": "file:///raw/broken.py", "languageId": "python", "version": 1, "text": "def f(:\n    pass\n"}})
            published = await server.until(lambda m: m.get("method") == types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
            diagnostics = published["params"]["diagnostics"]
            await server.request(2, types.TEXT_DOCUMENT_CODE_ACTION, {
                "textDocument": {"uri": "file:///raw/broken.py"}, "range": diagnostics[0]["range"],
                "context": {"diagnostics": diagnostics}})
            actions = (await server.response(2))["result"]
            fix_action = next(action for action in actions if action["title"].startswith("Explain and fix"))
            await server.request(3, types.WORKSPACE_EXECUTE_COMMAND, fix_action["command"])
            await server.until(lambda m: m.get("method") == types.WORKSPACE_APPLY_EDIT)  # never answered

            await server.request(4, types.SHUTDOWN)
            assert await server.response(4) == {"jsonrpc": "2.0", "id": 4, "result": None}
            await server.notify(types.EXIT)
            assert await server.exit_status() == 0
            answers_to_the_command = [m for m in server.received if m.get("id") == 3 and "method" not in m]
            assert len(answers_to_the_command) == 1, answers_to_the_command
        finally:
            if server.process.returncode is None:
                server.process.kill()
                await server.exit_status()
        assert b"dictionary changed size" not in server.stderr


# -- what the server keeps: nothing per message -------------------------------------------------------------------

class _Frames:
    """A writer for the protocol that keeps what the server sends."""

    def __init__(self) -> None:
        self.sent: list[dict] = []

    def write(self, data: bytes) -> None:
        self.sent.append(json.loads(data.partition(b"\r\n\r\n")[2]))

    def close(self) -> None:
        pass


async def test_text_sync_and_requests_leave_nothing_behind_in_the_protocol(monkeypatch):
    """Each didOpen/didChange/didClose used to leave a finished future (~2 KB) in pygls' request table, for ever."""
    monkeypatch.setenv("METAGPT_LSP_REVIEW_CACHE", ":memory:")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    from metagpt_lsp.server.features import create_server

    server = create_server()
    protocol = server.protocol
    frames = _Frames()
    protocol.set_writer(frames)

    def receive(message: dict) -> None:  # the bytes an editor sends, read as pygls reads them
        protocol.handle_message(json.loads(json.dumps(message), object_hook=protocol.structure_message))

    try:
        receive({"jsonrpc": "2.0", "id": 1, "method": types.INITIALIZE, "params": {"capabilities": {}}})
        receive({"jsonrpc": "2.0", "method": types.INITIALIZED, "params": {}})
        uri = "file:///memory/a.py"
        receive({"jsonrpc": "2.0", "method": types.TEXT_DOCUMENT_DID_OPEN, "params": {"textDocument": {
            "uri": uri, "languageId": "python", "version": 1, "text": ""}}})
        for version in range(2, 302):
            receive({"jsonrpc": "2.0", "method": types.TEXT_DOCUMENT_DID_CHANGE, "params": {
                "textDocument": {"uri": uri, "version": version},
                "contentChanges": [{"range": {"start": {"line": 0, "character": 0},
                                              "end": {"line": 0, "character": 0}}, "text": "x"}]}})
            receive({"jsonrpc": "2.0", "id": version, "method": types.TEXT_DOCUMENT_DIAGNOSTIC,
                     "params": {"textDocument": {"uri": uri}}})
        receive({"jsonrpc": "2.0", "method": types.TEXT_DOCUMENT_DID_CLOSE, "params": {"textDocument": {"uri": uri}}})
        in_flight = [future for future in protocol._request_futures.values() if isinstance(future, asyncio.Future)]
        if in_flight:  # async handlers (initialized) finish on the loop; their callbacks run before wait returns
            await asyncio.wait(in_flight)

        answered = [frame["id"] for frame in frames.sent if "id" in frame and "method" not in frame]
        assert answered == [1, *range(2, 302)], "every request was answered once"
        published = [frame["params"].get("version") for frame in frames.sent
                     if frame.get("method") == types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS]
        assert published[-2:] == [301, None], "the edits reached the document store, then it was closed"
        assert dict(protocol._request_futures) == {}, f"{len(protocol._request_futures)} futures left behind"
        assert dict(protocol._result_types) == {}
    finally:
        logging.getLogger("metagpt_lsp").removeHandler(server.editor_log)


async def test_an_empty_body_gets_a_parse_error_and_the_connection_goes_on():
    """pygls skips a frame of ``Content-Length: 0`` silently (it reads 0 as "no length yet"): it is owed -32700."""
    server = await RawServer.start()
    try:
        await server.initialize()
        await server.send(b"Content-Length: 0\r\n\r\n")
        answers = await server.answers_until_barrier()
        assert [(a["id"], a["error"]["code"]) for a in answers] == [(None, -32700)]
    finally:
        assert await server.stop() == 0
