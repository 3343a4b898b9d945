"""Review quality on pairs of the same function, buggy and correct: the team's cross-examined review against one
direct call to the same model, in the same run.

Sets: ``quixbugs`` (/work/shared/data/quixbugs: each program's description becomes the function's docstring) and
``mutants`` (``benchmarks/.cache/mutants-toolz.json`` from :mod:`mutants`: one-operator mutants of toolz that its
own tests catch). For each pair and each version:

- **team** — the library as the server uses it: ``Team.review`` of the function's unit (review proposes, diagnosis
  is challenged, the claimed call runs in the sandbox with ``--run-code``, default on), severities by evidence;
- **direct** — one chat call: "is there a bug? answer with the line" (JSON ``{"bug": bool, "line": ...}``); a line
  it names counts as one Warning.

Scored per severity: recall (the buggy version gets a finding on or next to a changed line), false alarms (the
correct version gets any Warning or Error), precision (findings on or next to a changed line of the buggy version,
over all findings of that severity or higher; and, for Warning+, findings anywhere in the buggy version over all:
a function failing its own example is buggy wherever the finding sits). Results are appended to a JSON-lines file as
they come (``--resume`` continues), then the table is printed. Model-heavy: on a shared machine run it under
``flock /tmp/model-heavy.lock``.

    python benchmarks/review_quality.py --set quixbugs [--limit 15] [--resume] [--report]
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import difflib
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from metagpt_lsp.agents.llm.settings import EMBEDDED_MODEL

QUIXBUGS = Path("/work/shared/data/quixbugs/programs")
MUTANTS = Path(__file__).parent / ".cache" / "mutants-toolz.json"
DIRECT_PROMPT = ("Is there a bug in this Python function? Reply in JSON: {{\"bug\": true or false, \"line\": the one "
                 "faulty line copied exactly, or \"\" when there is no bug}}.\n\n```python\n{code}\n```")
LEVELS = ("error", "warning", "info", "hint")


@dataclass(frozen=True)
class Pair:
    name: str
    buggy: str
    correct: str
    changed: tuple[int, ...]  # 0-based lines of the buggy text that differ from the correct one


@dataclass
class Row:
    pair: str
    version: str  # "buggy" or "correct"
    side: str  # "team" or "direct"
    findings: list[dict] = field(default_factory=list)  # {"line", "severity", "near", "message"}
    seconds: float = 0.0
    requests: int = 0
    error: str = ""


def _description(source: str) -> str:
    """The trailing description string of a QuixBugs program ("" when it has none)."""
    strings = [node.value.value for node in ast.parse(source).body if isinstance(node, ast.Expr)
               and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)]
    return strings[-1].strip() if strings else ""


def _with_docstring(source: str, description: str) -> str:
    """A QuixBugs program without its trailing description, which becomes the function's docstring instead."""
    tree = ast.parse(source)
    functions = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
    strings = [node for node in tree.body if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
               and isinstance(node.value.value, str)]
    lines = source.splitlines()
    if not functions:
        return source
    if strings:
        lines = lines[:strings[-1].lineno - 1] + lines[strings[-1].end_lineno or strings[-1].lineno:]
    if description:
        first = functions[0].body[0]
        indent = " " * first.col_offset
        quotes = '"' * 3
        body = [f"{indent}{line}".rstrip() for line in description.replace(quotes, "'''").splitlines()]
        lines[first.lineno - 1:first.lineno - 1] = [f"{indent}{quotes}", *body, f"{indent}{quotes}"]
    return "\n".join(lines).rstrip() + "\n"


def _changed(buggy: str, correct: str) -> tuple[int, ...]:
    a, b = buggy.splitlines(), correct.splitlines()
    changed: list[int] = []
    for tag, i1, i2, _j1, _j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag in ("replace", "delete"):
            changed += [i for i in range(i1, max(i2, i1 + 1))
                        if i < len(a) and a[i].strip() and not a[i].startswith(("import ", "from "))]
    return tuple(changed)


def quixbugs_pairs() -> list[Pair]:
    pairs = []
    for folder in sorted(QUIXBUGS.iterdir()):
        if not (folder / "buggy.py").exists():
            continue
        raw = (folder / "buggy.py").read_text()
        description = _description(raw)
        buggy = _with_docstring(raw, description)
        correct = _with_docstring((folder / "correct.py").read_text(), description)
        changed = _changed(buggy, correct)
        if changed:
            pairs.append(Pair(folder.name, buggy, correct, changed))
    return pairs


def mutant_pairs() -> list[Pair]:
    if not MUTANTS.exists():
        raise SystemExit(f"{MUTANTS} is missing: build it with python benchmarks/mutants.py")
    data = json.loads(MUTANTS.read_text())
    pairs = []
    for m in data["mutants"]:
        buggy, correct = m.get("buggy_unit") or m["buggy_function"], m.get("correct_unit") or m["correct_function"]
        changed = _changed(buggy, correct)
        if changed:
            pairs.append(Pair(m["id"], buggy, correct, changed))
    return pairs


def _near(line: int, changed: tuple[int, ...]) -> bool:
    return any(abs(line - c) <= 1 for c in changed)


class TeamSide:
    def __init__(self, llm: object, cache_dir: Path, run_code: bool) -> None:
        from metagpt_lsp.agents.team import ReviewCache, Team

        self.team = Team(llm, review_cache=ReviewCache(cache_dir / "review-cache.sqlite3"), deadline_s=600)  # type: ignore[arg-type]
        self.run_code = run_code

    async def review(self, pair: Pair, text: str, row: Row) -> None:
        from metagpt_lsp.agents.syntax import DocumentSnapshot
        from metagpt_lsp.agents.syntax.code_units import code_units
        from metagpt_lsp.agents.team import ReviewRequest

        snapshot = DocumentSnapshot.open(f"file:///tmp/review-quality/{pair.name}.py", 1, text, "python")
        units = tuple(u for u in code_units(snapshot) if "function" in u.kind)[:1]
        result = await self.team.review(ReviewRequest(snapshot, units, self.run_code))
        row.requests = result.requests_sent
        for f in result.findings:
            line = snapshot.position_at(f.start_byte).line
            row.findings.append({"line": line, "severity": f.severity, "near": _near(line, pair.changed),
                                 "message": f.message[:200]})
        if not result.ok:
            row.error = result.reason


class DirectSide:
    def __init__(self, base_url: str, model: str) -> None:
        import openai

        self.client = openai.AsyncOpenAI(base_url=base_url, api_key="no-key", max_retries=1, timeout=600)
        self.model = model

    async def review(self, pair: Pair, text: str, row: Row) -> None:
        from metagpt_lsp.agents.llm.structured_output import parse_json_reply

        reply = await self.client.chat.completions.create(
            model=self.model, temperature=0, max_tokens=200, extra_body={"repeat_penalty": 1.1},
            messages=[{"role": "user", "content": DIRECT_PROMPT.format(code=text)}])
        row.requests = 1
        try:
            answer = parse_json_reply(reply.choices[0].message.content or "")
        except ValueError:
            row.error = "not JSON"
            return
        quoted = str(answer.get("line") or "").strip() if isinstance(answer, dict) else ""
        if not (isinstance(answer, dict) and answer.get("bug") is True and quoted):
            return
        lines = [i for i, line in enumerate(text.splitlines()) if quoted in line or line.strip() in quoted
                 and line.strip()]
        line = lines[0] if lines else -1
        row.findings.append({"line": line, "severity": "warning", "near": line >= 0 and _near(line, pair.changed),
                             "message": quoted[:200]})


def table(rows: list[Row], sides: list[str]) -> str:
    out = ["| side | pairs | recall (any shown) | recall (Warning+) | false alarms (Warning+ on correct) | "
           "precision Error | precision Warning+ | precision Warning+ (buggy function) | precision Information+ | "
           "requests/function | s/function |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for side in sides:
        mine = [r for r in rows if r.side == side]
        buggy = {r.pair: r for r in mine if r.version == "buggy"}
        correct = {r.pair: r for r in mine if r.version == "correct"}
        names = sorted(set(buggy) & set(correct))
        if not names:
            continue

        def hit(row: Row, levels: tuple[str, ...]) -> bool:
            return any(f["near"] and f["severity"] in levels for f in row.findings)

        def precision(levels: tuple[str, ...], buggy: dict[str, Row] = buggy, correct: dict[str, Row] = correct,
                      names: list[str] = names, anywhere: bool = False) -> str:
            found = [(f, r.version) for n in names for r in (buggy[n], correct[n]) for f in r.findings
                     if f["severity"] in levels]
            if not found:
                return "– (0)"
            good = sum(1 for f, version in found if version == "buggy" and (anywhere or f["near"]))
            return f"{good / len(found):.2f} ({good}/{len(found)})"

        shown = ("error", "warning", "info", "hint")
        warn = ("error", "warning")
        recall_any = sum(hit(buggy[n], shown) for n in names)
        recall_warn = sum(hit(buggy[n], warn) for n in names)
        alarms = sum(any(f["severity"] in warn for f in correct[n].findings) for n in names)
        both = [r for n in names for r in (buggy[n], correct[n])]
        requests = sum(r.requests for r in both) / len(both)
        seconds = sum(r.seconds for r in both) / len(both)
        n = len(names)
        out.append(f"| {side} | {n} | {recall_any}/{n} = {recall_any / n:.2f} | {recall_warn}/{n} = "
                   f"{recall_warn / n:.2f} | {alarms}/{n} = {alarms / n:.2f} | {precision(('error',))} | "
                   f"{precision(warn)} | {precision(warn, anywhere=True)} | "
                   f"{precision(('error', 'warning', 'info'))} | {requests:.1f} | {seconds:.1f} |")
    return "\n".join(out)


def load(path: Path) -> list[Row]:
    if not path.exists():
        return []
    return [Row(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


async def run(args: argparse.Namespace) -> int:
    pairs = quixbugs_pairs() if args.set == "quixbugs" else mutant_pairs()
    if args.pairs:
        wanted = set(args.pairs.split(","))
        pairs = [p for p in pairs if p.name in wanted]
    if args.limit:
        pairs = pairs[args.offset:args.offset + args.limit]
    results = Path(args.results or Path(__file__).parent / ".cache" / f"review-{args.set}.jsonl")
    results.parent.mkdir(parents=True, exist_ok=True)
    sides = [s for s in ("team", "direct") if s in args.sides.split(",")]
    done = load(results) if args.resume or args.report else []
    if args.report:
        print(table([r for r in done if r.pair in {p.name for p in pairs}], sides))
        return 0
    if not args.resume and results.exists():
        results.unlink()
    keys = {(r.pair, r.version, r.side) for r in done}

    from metagpt_lsp.agents.llm import LlmClient, LlmSettings, for_endpoint, resolve_endpoint
    from metagpt_lsp.agents.llm.embedded.model import EmbeddedModel

    embedded = None
    base_url, model = args.base_url, args.model or EMBEDDED_MODEL
    if base_url is None:
        embedded = EmbeddedModel()
        base_url = await embedded.base_url()
    settings = LlmSettings(base_url=base_url, model=model, request_timeout_s=600, task_deadline_s=600)
    endpoint = resolve_endpoint(settings)
    llm = LlmClient(for_endpoint(settings, endpoint), endpoint)
    cache_dir = results.parent / f"review-{args.set}-cache"
    cache_dir.mkdir(exist_ok=True)
    team = TeamSide(llm, cache_dir, args.run_code) if "team" in sides else None
    direct = DirectSide(base_url, model) if "direct" in sides else None
    rows = list(done)
    try:
        for pair in pairs:
            for version, text in (("buggy", pair.buggy), ("correct", pair.correct)):
                for side, runner in (("team", team), ("direct", direct)):
                    if runner is None or (pair.name, version, side) in keys:
                        continue
                    row = Row(pair.name, version, side)
                    began = time.monotonic()
                    try:
                        await runner.review(pair, text, row)
                    except Exception as error:  # noqa: BLE001 - one failure is a row, not the end of the run
                        row.error = f"{type(error).__name__}: {error}"[:200]
                    row.seconds = round(time.monotonic() - began, 1)
                    rows.append(row)
                    with results.open("a") as out:
                        out.write(json.dumps(asdict(row)) + "\n")
                    shown = ", ".join(f"{f['severity']}@{f['line']}{'*' if f['near'] else ''}" for f in row.findings)
                    print(f"{pair.name:28} {version:8} {side:7} {row.seconds:6.1f}s  {shown or '-'}"
                          f"{'  ! ' + row.error if row.error else ''}", flush=True)
    finally:
        if team is not None:
            await team.team.close()
        await llm.aclose()
        if direct is not None:
            await direct.client.close()
        if embedded is not None:
            await embedded.stop()
    print()
    print(table([r for r in rows if r.pair in {p.name for p in pairs}], sides))
    return 0


async def examples_only(pairs: list[Pair]) -> int:
    """The own-examples check alone (no model): which buggy versions fail an example of their own, whether the
    finding sits on or next to a changed line, and any finding on a correct version (a false alarm)."""
    from metagpt_lsp.agents.syntax import DocumentSnapshot
    from metagpt_lsp.agents.syntax.code_units import code_units
    from metagpt_lsp.agents.team.example_findings import example_finding

    found = near = alarms = 0
    for pair in pairs:
        for version, text in (("buggy", pair.buggy), ("correct", pair.correct)):
            snapshot = DocumentSnapshot.open(f"file:///tmp/review-quality/{pair.name}.py", 1, text, "python")
            units = [u for u in code_units(snapshot) if "function" in u.kind][:1]
            finding = await example_finding(snapshot, units[0], 10.0) if units else None
            if finding is None:
                continue
            line = snapshot.position_at(finding.start_byte).line
            print(f"{pair.name:28} {version:8} line {line}{'*' if _near(line, pair.changed) else ''}  "
                  f"{finding.message[:100]}")
            found += version == "buggy"
            near += version == "buggy" and _near(line, pair.changed)
            alarms += version == "correct"
    print(f"own examples alone: {found}/{len(pairs)} buggy versions fail one ({near} on or next to the change), "
          f"{alarms}/{len(pairs)} correct versions do (false alarms)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", choices=("quixbugs", "mutants"), default="quixbugs")
    parser.add_argument("--pairs", help="only these pairs (comma-separated names)")
    parser.add_argument("--limit", type=int, default=0, help="at most this many pairs")
    parser.add_argument("--offset", type=int, default=0, help="skip this many pairs first (with --limit)")
    parser.add_argument("--sides", default="team,direct")
    parser.add_argument("--no-run-code", dest="run_code", action="store_false",
                        help="review as on save in an untrusted workspace: claimed inputs are not run")
    parser.add_argument("--results", help="JSON-lines file (default benchmarks/.cache/review-SET.jsonl)")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--report", action="store_true", help="print the table of the results so far")
    parser.add_argument("--base-url")
    parser.add_argument("--model")
    parser.add_argument("--examples-only", action="store_true",
                        help="no model: only the functions' own examples, over every pair of the set")
    args = parser.parse_args(argv)
    if args.examples_only:
        return asyncio.run(examples_only(quixbugs_pairs() if args.set == "quixbugs" else mutant_pairs()))
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
