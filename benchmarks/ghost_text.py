"""Ghost text on infilling problems: the server over LSP against one direct fill-in-the-middle call, same model.

Problems come from the correct QuixBugs programs (which have tests): a *line* problem removes one statement and
puts the cursor after its indentation, as an editor's auto-indent leaves it; a *block* problem removes the body of
a compound statement and puts the cursor at the end of its opening line. An offer is applied as an editor would
(the item's text over its range) and the program's tests decide. Both sides see the same window (the server's
``cursor_context`` with its defaults) and the same model; the direct side sends the raw Qwen FIM prompt and applies
the middle as it comes. Cold: the first request for a new file; warm: after typing the first character of the
missing text. Replay: the missing text typed a character at a time, an automatic request after each keystroke
(each answered before the next key), model calls counted at a counting proxy in front of the model.

    flock /tmp/model-heavy.lock .venv/bin/python benchmarks/ghost_text.py --problems 30
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quixbugs_scoring import Program, programs, run_tests
from stdio_client import PUSH_CLIENT, StdioClient

from metagpt_lsp.agents.ghost_text import WindowOptions, cursor_context, template_for
from metagpt_lsp.agents.llm import EMBEDDED_MODEL
from metagpt_lsp.agents.syntax import DocumentSnapshot


@dataclass(frozen=True)
class Problem:
    name: str
    kind: str  # "line" or "block"
    program: Program
    text: str  # the program with the hole
    cursor: int  # character offset
    missing: str  # what was removed (what a user would type)


def problems_from(program: Program) -> list[Problem]:
    source = program.correct
    lines = source.split("\n")
    found: list[Problem] = []
    tree = ast.parse(source)
    statements = [node for node in ast.walk(tree) if isinstance(node, ast.stmt) and node.col_offset > 0]
    simple = [s for s in statements if not isinstance(s, (ast.If, ast.For, ast.While, ast.With, ast.Try,
                                                            ast.FunctionDef)) and s.lineno == s.end_lineno
              and len(lines[s.lineno - 1].strip()) >= 8]
    if simple:
        line = simple[len(simple) // 2].lineno - 1
        indent = len(lines[line]) - len(lines[line].lstrip())
        text = "\n".join(lines[:line] + [lines[line][:indent]] + lines[line + 1:])
        cursor = sum(len(x) + 1 for x in lines[:line]) + indent
        found.append(Problem(f"{program.name}:line", "line", program, text, cursor, lines[line][indent:]))
    blocks = [s for s in statements if isinstance(s, (ast.If, ast.For, ast.While)) and s.body
              and 1 <= s.body[-1].end_lineno - s.lineno <= 4 and s.body[0].lineno > s.lineno]  # type: ignore[operator]
    if blocks:
        block = blocks[0]
        opener = block.lineno - 1
        last = block.body[-1].end_lineno - 1  # type: ignore[operator]
        text = "\n".join(lines[:opener + 1] + lines[last + 1:])
        cursor = sum(len(x) + 1 for x in lines[:opener]) + len(lines[opener])
        missing = "\n" + "\n".join(lines[opener + 1:last + 1])
        found.append(Problem(f"{program.name}:block", "block", program, text, cursor, missing))
    return found


def position(text: str, offset: int) -> dict[str, int]:
    before = text[:offset]
    line = before.count("\n")
    column = len(before) - (before.rfind("\n") + 1)
    return {"line": line, "character": len(before[-column:].encode("utf-16-le")) // 2 if column else 0}


def apply_item(text: str, item: dict[str, Any]) -> str:
    lines = text.split("\n")

    def offset(pos: dict[str, int]) -> int:
        return sum(len(x) + 1 for x in lines[:pos["line"]]) + pos["character"]  # ASCII programs

    start, end = offset(item["range"]["start"]), offset(item["range"]["end"])
    return text[:start] + item["insertText"] + text[end:]


class CountingProxy:
    """A TCP proxy in front of the model that counts ``POST /v1/completions`` requests."""

    def __init__(self, upstream: str) -> None:
        host_port = upstream.split("//", 1)[1].split("/", 1)[0]
        self.host, port = host_port.rsplit(":", 1)
        self.port = int(port)
        self.completions = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/v1"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(self.host, self.port)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter, count: bool) -> None:
            carry = b""
            try:
                while data := await source.read(65536):
                    if count:
                        self.completions += (carry + data).count(b"POST /v1/completions ")
                        carry = data[-24:]
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                sink.close()

        await asyncio.gather(pipe(reader, up_writer, True), pipe(up_reader, writer, False))


class ServerSide:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.client: StdioClient | None = None
        self.version = 0

    async def start(self, workdir: Path) -> None:
        env = {**os.environ, "OPENAI_API_KEY": "no-key"}
        self.client = await StdioClient.start([sys.executable, "-m", "metagpt_lsp.server", "--stdio", "--log-level",
                                               "warning"], env)
        capabilities = {**PUSH_CLIENT, "textDocument": {**PUSH_CLIENT["textDocument"], "inlineCompletion": {}}}
        options = {"llm": {"baseUrl": self.base_url, "model": EMBEDDED_MODEL, "requestTimeoutS": 300},
                   "review": {"onSave": False}, "inline": {"debounceMs": 0, "deadlineS": 120}}
        await self.client.request("initialize", {"processId": None, "rootUri": workdir.as_uri(),
                                                 "capabilities": capabilities, "initializationOptions": options})
        self.client.notify("initialized", {})

    def open(self, uri: str, text: str) -> None:
        self.version += 1
        assert self.client is not None
        self.client.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python",
                                                                     "version": self.version, "text": text}})

    def change(self, uri: str, text: str) -> None:
        self.version += 1
        assert self.client is not None
        self.client.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": self.version},
                                                      "contentChanges": [{"text": text}]})

    async def offer(self, uri: str, text: str, cursor: int) -> tuple[str, float]:
        assert self.client is not None
        began = time.monotonic()
        response, _ = await self.client.request("textDocument/inlineCompletion", {
            "textDocument": {"uri": uri}, "position": position(text, cursor), "context": {"triggerKind": 2}})
        items = (response.get("result") or {}).get("items") or []
        return (apply_item(text, items[0]) if items else text), time.monotonic() - began


async def direct_offer(client: Any, text: str, cursor: int) -> tuple[str, float]:
    snapshot = DocumentSnapshot.open("file:///bench/program.py", 1, text)
    context = cursor_context(snapshot, len(text[:cursor].encode()), WindowOptions())
    template = template_for(EMBEDDED_MODEL)
    began = time.monotonic()
    stream = await client.completions.create(model=EMBEDDED_MODEL, prompt=template.prompt(context.prefix,
                                                                                          context.suffix),
                                             max_tokens=128, temperature=0, stream=True,
                                             extra_body={"stop": list(template.stop)})
    middle = "".join([chunk.choices[0].text async for chunk in stream if chunk.choices])
    return text[:cursor] + middle + text[cursor:], time.monotonic() - began


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def run(args: argparse.Namespace) -> int:
    import openai

    from metagpt_lsp.agents.llm.embedded.model import EmbeddedModel

    embedded = EmbeddedModel()
    base_url = await embedded.base_url()
    proxy = CountingProxy(base_url)
    proxied = await proxy.start()
    client = openai.AsyncOpenAI(base_url=base_url, api_key="no-key", timeout=300)
    all_problems = [p for program in programs() for p in problems_from(program)]
    lines = [p for p in all_problems if p.kind == "line"]
    blocks = [p for p in all_problems if p.kind == "block"]
    chosen = lines[:args.problems * 2 // 3] + blocks[:args.problems - min(len(lines), args.problems * 2 // 3)]
    server = ServerSide(proxied)
    workdir = Path(tempfile.mkdtemp(prefix="ghost-bench-"))
    await server.start(workdir)
    rows: dict[str, dict[str, list]] = {side: {"pass": [], "cold": [], "warm": []} for side in ("server", "direct")}
    try:
        await direct_offer(client, "x = ", 4)  # the model's own cold start is nobody's time to offer
        for index, problem in enumerate(chosen):
            uri = (workdir / f"p{index}_{problem.program.name}.py").as_uri()
            server.open(uri, problem.text)
            if index % 2:  # alternate who goes first: the second would find the first's prompt in the KV cache
                direct_completed, direct_cold = await direct_offer(client, problem.text, problem.cursor)
                completed, cold = await server.offer(uri, problem.text, problem.cursor)
            else:
                completed, cold = await server.offer(uri, problem.text, problem.cursor)
                direct_completed, direct_cold = await direct_offer(client, problem.text, problem.cursor)
            typed = problem.text[:problem.cursor] + problem.missing[0] + problem.text[problem.cursor:]
            server.change(uri, typed)
            _, warm = await server.offer(uri, typed, problem.cursor + 1)
            _, direct_warm = await direct_offer(client, typed, problem.cursor + 1)
            server_ok = run_tests(problem.program, completed).fixed
            direct_ok = run_tests(problem.program, direct_completed).fixed
            for side, ok, c, w in (("server", server_ok, cold, warm), ("direct", direct_ok, direct_cold,
                                                                        direct_warm)):
                rows[side]["pass"].append(ok)
                rows[side]["cold"].append(c)
                rows[side]["warm"].append(w)
            print(f"{problem.name:34} server {'pass' if server_ok else 'FAIL'} {cold:5.1f}s/{warm:5.1f}s   "
                  f"direct {'pass' if direct_ok else 'FAIL'} {direct_cold:5.1f}s/{direct_warm:5.1f}s", flush=True)
        keystrokes = 0
        before = proxy.completions
        for index, problem in enumerate(chosen[:args.replay]):
            uri = (workdir / f"replay{index}_{problem.program.name}.py").as_uri()
            text = problem.text
            server.open(uri, text)
            for offset, char in enumerate(problem.missing):
                cursor = problem.cursor + offset
                text = text[:cursor] + char + text[cursor:]
                server.change(uri, text)
                await server.offer(uri, text, cursor + 1)
                keystrokes += 1
        calls = proxy.completions - before
    finally:
        assert server.client is not None
        await server.client.close()
        await client.close()
        await embedded.stop()
    print(f"\n{len(chosen)} problems ({sum(p.kind == 'line' for p in chosen)} line, "
          f"{sum(p.kind == 'block' for p in chosen)} block), embedded {EMBEDDED_MODEL}")
    print("| side | pass | cold p50 / p90 s | warm p50 / p90 s |")
    print("|---|---|---|---|")
    for side, data in rows.items():
        print(f"| {side} | {sum(data['pass'])}/{len(data['pass'])} | {pct(data['cold'], .5):.2f} / "
              f"{pct(data['cold'], .9):.2f} | {pct(data['warm'], .5):.2f} / {pct(data['warm'], .9):.2f} |")
    print(f"replay: {keystrokes} keystrokes over {min(args.replay, len(chosen))} problems, {calls} model calls "
          f"= {100 * calls / max(1, keystrokes):.1f} per 100 keystrokes")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", type=int, default=30)
    parser.add_argument("--replay", type=int, default=6, help="problems whose missing text is typed key by key")
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
