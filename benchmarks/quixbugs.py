"""Fix quality on QuixBugs: "Explain and fix" through the real server over LSP, against one direct call to the model.

For each of the 40 programs (``/work/shared/data/quixbugs``, one-line bugs), in one run and on one model:

- **team** — the real language server (``python -m metagpt_lsp.server --stdio``) opens the buggy file; the harness
  acts as an editor: a diagnostic that does not reveal the line (message "fails its tests", range = the function's
  name, source "pytest"), ``textDocument/codeAction``, pick "Explain and fix", ``codeAction/resolve``, apply the
  versioned edit, then run the program's tests on the result (:mod:`quixbugs_scoring`). Tokens come from the
  server's ``metagpt.status`` before and after.
- **direct** — the baseline: one chat call to the same model with the buggy program, asking for the fixed program
  (same temperature, repeat penalty and scoring).

Each is scored *fixed* (every test passes), *wrong* (an edit that parses but fails, or times out), *no-edit* (no
fix offered) or *broken* (an edit that does not parse: must be 0 for the team). Per program: outcome, tokens,
seconds; then both tables and totals. Results are appended to a JSON-lines file as they come, so a run can be
resumed (``--resume``) or done piecewise (``--programs a,b`` / ``--limit N``).

The model: by default the harness starts the embedded model (Qwen2.5-Coder-1.5B Q4_K_M, llama.cpp, loopback) once
and hands its URL to both sides, so the server and the baseline talk to the very same process; ``--base-url`` and
``--model`` point both at another OpenAI-compatible endpoint.

    python benchmarks/quixbugs.py [--programs a,b] [--limit N] [--candidates 3] [--doctests] [--results FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import json
import os
import re
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lsprotocol import types
from quixbugs_scoring import Program, parses, programs, run_tests

from metagpt_lsp.agents.llm.code_blocks import extract_code_block
from metagpt_lsp.agents.llm.settings import (
    EMBEDDED_MODEL,
    EMBEDDED_REQUEST_TIMEOUT_S,
    EMBEDDED_TASK_DEADLINE_S,
)
from metagpt_lsp.server.cli.check import CheckClient, apply_text_edits, client_capabilities

DIRECT_PROMPT = ("This Python program has a bug: it fails its tests. Fix the bug. Reply with the complete fixed "
                 "program in one ```python block.\n\n```python\n{program}\n```")
DIRECT_MAX_TOKENS = 1024


@dataclass
class Outcome:
    """One program, one side: how it ended and what it cost."""

    program: str
    side: str  # "team" or "direct"
    result: str  # "fixed", "wrong", "no-edit", "broken"
    seconds: float
    prompt_tokens: int = 0
    completion_tokens: int = 0
    detail: str = ""
    config: str = ""
    how: str = ""  # the team's path, from its trace: model candidates, the one-token search, what it chose


def function_name_range(text: str, name: str) -> types.Range:
    """The range of the name in ``def name(`` (the program's own function; the first ``def`` otherwise)."""
    lines = text.splitlines()
    pattern = re.compile(rf"^\s*def\s+({re.escape(name)})\s*\(")
    for wanted in (pattern, re.compile(r"^\s*def\s+(\w+)\s*\(")):
        for number, line in enumerate(lines):
            match = wanted.match(line)
            if match:
                return types.Range(start=types.Position(line=number, character=match.start(1)),
                                   end=types.Position(line=number, character=match.end(1)))
    raise ValueError(f"no function definition in {name}")


def score_text(program: Program, text: str | None, why_none: str, test_timeout_s: float) -> tuple[str, str]:
    """fixed / wrong / no-edit / broken; a program of another set brings its own ``score`` (benchmarks/mutant_fixes)."""
    own_score = getattr(program, "score", None)
    if own_score is not None:
        return own_score(text, why_none, test_timeout_s)
    if text is None:
        return "no-edit", why_none
    if not parses(text):
        return "broken", "the edited program does not parse"
    score = run_tests(program, text, test_timeout_s)
    return ("fixed" if score.fixed else "wrong"), score.detail


# -- the team, through the server --------------------------------------------------------------------------------

class TeamSide:
    """The language server over stdio, driven as an editor drives it."""

    def __init__(self, settings: dict[str, Any], workdir: Path, timeout_s: float, show: bool = False) -> None:
        self.settings = settings
        self.show = show
        self.workdir = workdir
        self.timeout_s = timeout_s
        self.client = CheckClient()

    async def start(self) -> float:
        began = time.monotonic()
        await self.client.start_io(sys.executable, "-m", "metagpt_lsp.server", "--stdio", "--log-level", "warning")
        await self.client.initialize_async(types.InitializeParams(
            capabilities=client_capabilities(), root_uri=self.workdir.as_uri(),
            client_info=types.ClientInfo(name="quixbugs benchmark"), initialization_options=self.settings))
        self.client.initialized(types.InitializedParams())
        return time.monotonic() - began

    async def stop(self) -> None:
        try:
            await asyncio.wait_for(self.client.shutdown_async(None), 30)
            self.client.exit(None)
        finally:
            await self.client.stop()

    async def _status(self) -> dict[str, Any]:
        return await self.client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="metagpt.status", arguments=[]))

    async def fix(self, program: Program, test_timeout_s: float, config: str) -> Outcome:
        text = program.buggy
        path = self.workdir / f"{program.name}.py"
        path.write_text(text, encoding="utf-8")
        uri = path.as_uri()
        before = await self._status()
        began = time.monotonic()
        self.client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
            uri=uri, language_id="python", version=1, text=text)))
        try:
            await self.client.diagnostics_for(uri, 1, 30)
            edited, why = await self._explain_and_fix(uri, text, function_name_range(text, program.name))
        finally:
            self.client.text_document_did_close(types.DidCloseTextDocumentParams(
                text_document=types.TextDocumentIdentifier(uri=uri)))
        seconds = time.monotonic() - began
        after = await self._status()
        result, detail = score_text(program, edited, why, test_timeout_s)
        trace = str(await self.client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="metagpt.trace", arguments=[])))
        if self.show:
            print(trace)
            self._show(text, edited)
        return Outcome(program.name, "team", result, seconds,
                       after["promptTokens"] - before["promptTokens"],
                       after["completionTokens"] - before["completionTokens"], detail, config, team_path(trace))

    @staticmethod
    def _show(text: str, edited: str | None) -> None:
        if edited is not None:
            print("".join(difflib.unified_diff(text.splitlines(True), edited.splitlines(True), "buggy", "edited")))

    async def _explain_and_fix(self, uri: str, text: str, where: types.Range) -> tuple[str | None, str]:
        diagnostic = types.Diagnostic(range=where, message="fails its tests", source="pytest",
                                      severity=types.DiagnosticSeverity.Error)
        actions = await self.client.text_document_code_action_async(types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), range=where,
            context=types.CodeActionContext(diagnostics=[diagnostic], only=[types.CodeActionKind.QuickFix])))
        fix = next((a for a in actions or [] if isinstance(a, types.CodeAction)
                    and a.title.startswith("Explain and fix")), None)
        if fix is None:
            return None, "no Explain and fix action was listed"
        said = len(self.client.messages)
        try:
            resolved = await asyncio.wait_for(self.client.code_action_resolve_async(fix), self.timeout_s)
        except TimeoutError:
            return None, f"no answer within {self.timeout_s:g} s"
        edit = resolved.edit
        if edit is None or not edit.document_changes:
            messages = self.client.messages[said:]
            return None, (messages[-1] if messages else "no safe fix")[:300]
        change = edit.document_changes[0]
        if not isinstance(change, types.TextDocumentEdit) or change.text_document.version != 1:
            return None, "the edit was not a TextDocumentEdit for version 1"
        return apply_text_edits(text, [e for e in change.edits if isinstance(e, types.TextEdit)]), ""


def team_path(trace: str) -> str:
    """How the team got its answer, read from its trace: "2 candidates, search, chose round 1, unguided"."""
    candidates = trace.count("-> subtask.propose_fix")
    searched = ", search" if "-> subtask.search_repair" in trace else ""
    chose = re.search(r"! chose (.*?):", trace)
    stuck = ", stuck" if "repeated code already tried" in trace else ""
    return f"{candidates} candidate(s){searched}{stuck}" + (f", chose {chose.group(1)}" if chose else "")


# -- the baseline: one direct call -------------------------------------------------------------------------------

class DirectSide:
    """One chat completion per program, through the ``openai`` client, with the team's sampling settings."""

    def __init__(self, base_url: str, model: str, api_key: str, timeout_s: float, repeat_penalty: float) -> None:
        import openai

        self.client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=1, timeout=timeout_s)
        self.model = model
        self.extra = {"repeat_penalty": repeat_penalty} if "openai.com" not in base_url else {}

    async def fix(self, program: Program, test_timeout_s: float, config: str) -> Outcome:
        began = time.monotonic()
        reply = await self.client.chat.completions.create(
            model=self.model, temperature=0, max_tokens=DIRECT_MAX_TOKENS, extra_body=self.extra,
            messages=[{"role": "user", "content": DIRECT_PROMPT.format(program=program.buggy)}])
        seconds = time.monotonic() - began
        content = reply.choices[0].message.content or ""
        code = extract_code_block(content, "python")
        edited = code if code and code.strip() else None
        result, detail = score_text(program, edited, "the reply held no code", test_timeout_s)
        usage = reply.usage
        return Outcome(program.name, "direct", result, seconds, usage.prompt_tokens if usage else 0,
                       usage.completion_tokens if usage else 0, detail, config)

    async def close(self) -> None:
        await self.client.close()


async def cold_start_answer(base_url: str, model: str) -> str:
    """A tiny first request: the embedded model's cold start ends with its answer."""
    import openai

    async with openai.AsyncOpenAI(base_url=base_url, api_key="no-key", max_retries=0, timeout=120) as client:
        reply = await client.chat.completions.create(
            model=model, max_tokens=4, temperature=0, messages=[{"role": "user", "content": "Say OK."}])
    return reply.choices[0].message.content or ""


# -- reporting ---------------------------------------------------------------------------------------------------

def table(rows: list[Outcome], side: str) -> str:
    mine = [row for row in rows if row.side == side]
    lines = [f"{side}:", f"  {'program':28} {'result':8} {'prompt':>7} {'compl':>6} {'seconds':>8}  detail"]
    for row in mine:
        lines.append(f"  {row.program:28} {row.result:8} {row.prompt_tokens:7d} {row.completion_tokens:6d} "
                     f"{row.seconds:8.1f}  {row.detail[:70]}" + (f"  [{row.how}]" if row.how else ""))
    lines.append("  " + totals(mine))
    return "\n".join(lines)


def totals(rows: list[Outcome]) -> str:
    count = {kind: sum(row.result == kind for row in rows) for kind in ("fixed", "wrong", "no-edit", "broken")}
    seconds = sum(row.seconds for row in rows)
    tokens = sum(row.prompt_tokens + row.completion_tokens for row in rows)
    per = len(rows) or 1
    median = statistics.median(row.seconds for row in rows) if rows else 0.0
    return (f"total: fixed {count['fixed']}/{len(rows)}, wrong {count['wrong']}, no-edit {count['no-edit']}, "
            f"broken {count['broken']}; {tokens} tokens ({tokens / per:.0f}/program), {seconds:.0f} s "
            f"({seconds / per:.1f} s/program, median {median:.1f} s)")


def load_results(path: Path, config: str) -> list[Outcome]:
    if not path.exists():
        return []
    rows = [Outcome(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]
    return [row for row in rows if row.config == config]


# -- the run -----------------------------------------------------------------------------------------------------

async def run(args: argparse.Namespace) -> int:
    chosen = programs()
    if args.programs:
        wanted = [name.strip() for name in args.programs.split(",") if name.strip()]
        unknown = sorted(set(wanted) - {p.name for p in chosen})
        if unknown:
            print(f"unknown programs: {', '.join(unknown)}", file=sys.stderr)
            return 2
        chosen = [p for p in chosen if p.name in wanted]
    if args.limit:
        chosen = chosen[: args.limit]
    config = (f"candidates={args.candidates} doctests={args.doctests} runCode={args.run_code} "
              f"maxTokens={DIRECT_MAX_TOKENS} "
              f"model={args.model or EMBEDDED_MODEL}")
    results = Path(args.results)
    results.parent.mkdir(parents=True, exist_ok=True)
    sides = [side for side in ("team", "direct") if side in args.sides.split(",")]
    if args.report:
        return report(load_results(results, config), sides, config)
    done = load_results(results, config) if args.resume else []
    if not args.resume and results.exists():
        results.unlink()
    done_keys = {(row.program, row.side) for row in done}

    embedded = None
    base_url, model = args.base_url, args.model or EMBEDDED_MODEL
    if base_url is None:
        from metagpt_lsp.agents.llm.embedded.model import EmbeddedModel

        embedded = EmbeddedModel()
        began = time.monotonic()
        base_url = await embedded.base_url()
        ready = time.monotonic() - began
        await cold_start_answer(base_url, model)
        print(f"embedded model: ready at {base_url} {ready:.1f} s after launch, first answer (cold start) after "
              f"{time.monotonic() - began:.1f} s", flush=True)
    api_key = os.environ.get("OPENAI_API_KEY", "no-key")
    # The same reply cap as the direct call: a whole function rewritten must fit in the team's replies too.
    settings: dict[str, Any] = {"llm": {"baseUrl": base_url, "model": model, "maxTokens": DIRECT_MAX_TOKENS},
                                "team": {"fixCandidates": args.candidates, "runDoctests": args.doctests,
                                         "runCode": args.run_code},
                                "review": {"onSave": False}}
    if embedded is not None:
        # The server gives the embedded model these timeouts when it starts it itself; here the harness started it
        # (so both sides share one model), so the server would otherwise treat it as any endpoint.
        settings["llm"].update(requestTimeoutS=EMBEDDED_REQUEST_TIMEOUT_S, taskDeadlineS=EMBEDDED_TASK_DEADLINE_S)
    if args.deadline:
        settings["llm"]["taskDeadlineS"] = args.deadline
    if args.request_timeout:
        settings["llm"]["requestTimeoutS"] = args.request_timeout
    workdir = Path(args.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    team = TeamSide(settings, workdir, timeout_s=args.timeout, show=args.show) if "team" in sides else None
    direct = DirectSide(base_url, model, api_key, args.timeout, 1.1) if "direct" in sides else None
    rows = list(done)
    try:
        if team is not None:
            print(f"language server initialized in {await team.start():.1f} s", flush=True)
        for program in chosen:
            for side_name, side in (("team", team), ("direct", direct)):
                if side is None or (program.name, side_name) in done_keys:
                    continue
                outcome = await side.fix(program, args.test_timeout, config)
                rows.append(outcome)
                with results.open("a") as handle:
                    handle.write(json.dumps(asdict(outcome)) + "\n")
                print(f"{program.name:28} {side_name:6} {outcome.result:8} {outcome.seconds:6.1f} s "
                      f"{outcome.prompt_tokens + outcome.completion_tokens:6d} tok  {outcome.detail[:90]}"
                      + (f"  [{outcome.how}]" if outcome.how else ""), flush=True)
    finally:
        if team is not None:
            await team.stop()
        if direct is not None:
            await direct.close()
        if embedded is not None:
            await embedded.stop()
    return report(rows, sides, config)


def report(rows: list[Outcome], sides: list[str], config: str) -> int:
    """Print both tables and the totals; 1 when the team made an edit that does not parse."""
    print(f"\nconfig: {config}")
    for side_name in sides:
        print(table(rows, side_name))
    both = {row.program for row in rows if row.side == "team"} & {row.program for row in rows if row.side == "direct"}
    if "team" in sides and "direct" in sides:
        team_fixed = sum(r.result == "fixed" for r in rows if r.side == "team" and r.program in both)
        direct_fixed = sum(r.result == "fixed" for r in rows if r.side == "direct" and r.program in both)
        print(f"\nsame {len(both)} programs: team fixed {team_fixed}, direct call fixed {direct_fixed}")
    broken = sum(row.result == "broken" for row in rows if row.side == "team")
    return 1 if broken else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--programs", help="comma-separated program names (default: all 40)")
    parser.add_argument("--limit", type=int, help="only the first N programs")
    parser.add_argument("--sides", default="team,direct", help="team, direct or both (default)")
    parser.add_argument("--candidates", type=int, default=1, help="team.fixCandidates (default 1)")
    parser.add_argument("--doctests", action="store_true", help="team.runDoctests: verify fixes by their examples")
    parser.add_argument("--run-code", default="onRequest", choices=("never", "onRequest", "onSaveToo"),
                        help="team.runCode (default onRequest: a fix runs examples in the sandbox)")
    parser.add_argument("--base-url", help="an OpenAI-compatible endpoint (default: start the embedded model)")
    parser.add_argument("--model", help=f"the model name (default {EMBEDDED_MODEL})")
    parser.add_argument("--deadline", type=float, help="llm.taskDeadlineS for the team (default: the server's)")
    parser.add_argument("--request-timeout", type=float,
                        help="llm.requestTimeoutS for the team (default: 300 s for the embedded model, else the "
                             "server's)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for one fix (default 900)")
    parser.add_argument("--test-timeout", type=float, default=30.0, help="seconds for a program's tests")
    parser.add_argument("--results", default="benchmarks/.cache/quixbugs-results.jsonl",
                        help="JSON lines, one outcome per line")
    parser.add_argument("--resume", action="store_true", help="keep the results file's outcomes for this config")
    parser.add_argument("--report", action="store_true", help="only print the tables of the results file")
    parser.add_argument("--workdir", default="/tmp/quixbugs-work", help="where the buggy files are written")
    parser.add_argument("--show", action="store_true", help="print each team task's trace and diff")
    args = parser.parse_args(argv)
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
