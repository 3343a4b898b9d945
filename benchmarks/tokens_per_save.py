"""Tokens per save on real changes: what the on-save review sends to the model, against reviewing the whole file.

Two consecutive releases of a small pure-Python package are downloaded from PyPI as sdists (``pip download
--no-deps --no-binary :all:``, kept in ``benchmarks/.cache/``). A git repository is made from the older release, and
every ``.py`` file that changed is replayed hunk by hunk (the hunks of a line diff, top to bottom) as ``didChange``
edits through the real server over stdio, saving after each hunk. The server's LLM is the scripted OpenAI-compatible
server (tests/scripted_llm.py, real HTTP on 127.0.0.1) answering ``{"findings": []}`` at once; it records every
request, and prompt tokens are counted on what it received, the same way for every run (characters of all messages
// 4, the scripted server's usage estimate).

- **changed code**: the repository has the older release at HEAD; each save reviews what changed since HEAD, and
  units reviewed before (same text) come from the review cache — what a user gets.
- **whole file** (the baseline, same server, same edits, same saves): the same files untracked in a second
  repository, so each save reviews every unit of the file, with the review cache (and the LLM client's memory of
  replies) cleared before each save — what a reviewer that looks at the whole file at each save would send.
- **unchanged saves**: after each file's last hunk, one more save with no change; its requests are counted.

Then ``_pydecimal.py`` of CPython 3.11.7 (``../shared/data/perf``) is committed in a repository, one line of
``Decimal.__add__`` is changed and the file saved: the review's prompt tokens against a whole-file review of it.

Targets: changed code <= 10% of the whole-file tokens over at least 50 saves; zero requests for an unchanged save;
the ``_pydecimal`` save <= 3% of its whole-file review. Exit status 1 when a target is missed.

    python benchmarks/tokens_per_save.py [--package itsdangerous --old 2.1.2 --new 2.2.0] [--pydecimal PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stdio_client import StdioClient

from metagpt_lsp.testing.openai_wire import usage_for
from metagpt_lsp.testing.scripted_llm import ScriptedLlm

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
PYDECIMAL = HERE.parents[1] / "shared" / "data" / "perf" / "cpython-3.11.7" / "_pydecimal.py"
NO_FINDINGS = '{"findings": []}'
SERVER = [sys.executable, "-m", "metagpt_lsp.server", "--stdio", "--log-level", "warning"]
OPTIONS = {"review": {"maxUnits": 500}}  # no cap on units in either run: the baseline must be the whole file
WAIT_S = 120.0


# -- the releases ---------------------------------------------------------------------------------------------------

def sdist(package: str, version: str) -> Path:
    """The release's sdist, downloaded once into benchmarks/.cache/."""
    CACHE.mkdir(parents=True, exist_ok=True)
    found = sorted(CACHE.glob(f"{package}-{version}.tar.gz")) + sorted(CACHE.glob(f"{package}-{version}.zip"))
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                        f"{package}=={version}", "-d", str(CACHE)], check=True)
        found = sorted(CACHE.glob(f"{package}-{version}.*"))
    if not found:
        raise SystemExit(f"pip downloaded no sdist of {package}=={version} into {CACHE}")
    return found[0]


def python_files(archive: Path) -> dict[str, str]:
    """The .py files of an sdist (.tar.gz), by path below its top folder."""
    files = {}
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            top, _, name = member.name.partition("/")
            if member.isfile() and name.endswith(".py"):
                data = tar.extractfile(member)
                assert data is not None
                files[name] = io.TextIOWrapper(data, encoding="utf-8", newline="").read()
    return files


@dataclass(frozen=True)
class Hunk:
    """Replace lines ``[first, last)`` of the text as it is when the hunk is applied with ``new_lines``."""

    first: int
    last: int
    new_lines: tuple[str, ...]


def hunks(old: str, new: str) -> list[Hunk]:
    """The line diff of two texts as edits applied one after another, top to bottom."""
    old_lines, new_lines = old.splitlines(keepends=True), new.splitlines(keepends=True)
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    result, shift = [], 0
    for tag, a1, a2, b1, b2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        result.append(Hunk(a1 + shift, a2 + shift, tuple(new_lines[b1:b2])))
        shift += (b2 - b1) - (a2 - a1)
    return result


def apply_hunk(text: str, hunk: Hunk) -> str:
    lines = text.splitlines(keepends=True)
    return "".join(lines[:hunk.first] + list(hunk.new_lines) + lines[hunk.last:])


def line_start(text: str, line: int) -> dict[str, int]:
    """The LSP position (UTF-16) where line ``line`` starts; past the last line, the end of the text."""
    lines = text.splitlines(keepends=True)
    if line < len(lines) or not lines or lines[-1].endswith(("\n", "\r")):
        return {"line": line, "character": 0}
    return {"line": len(lines) - 1, "character": len(lines[-1].encode("utf-16-le")) // 2}


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com", "-c",
                    "commit.gpgsign=false", *args], cwd=root, check=True, capture_output=True)


def repository(root: Path, files: dict[str, str], commit: bool) -> Path:
    """A git repository holding ``files``: committed (HEAD is the old release) or left untracked."""
    root.mkdir(parents=True)
    git(root, "init", "-q")
    (root / "README").write_text("benchmark\n")
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
    git(root, "add", "README", *(files if commit else ()))
    git(root, "commit", "-q", "-m", "old release")
    return root


# -- the editor -----------------------------------------------------------------------------------------------------

@dataclass
class SaveCost:
    requests: int
    prompt_tokens: int


@dataclass
class Editor:
    """The real server over stdio, driven like an editor; each save waits for the review's diagnostics."""

    client: StdioClient
    llm: ScriptedLlm
    versions: dict[str, int] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)

    async def _published(self, uri: str, send: Any) -> None:
        future = self.client.published(uri, self.versions[uri])
        send()
        await asyncio.wait_for(future, WAIT_S)

    async def open(self, path: Path) -> str:
        uri, text = path.as_uri(), path.read_text(encoding="utf-8")
        self.versions[uri], self.texts[uri] = 1, text
        await self._published(uri, lambda: self.client.notify("textDocument/didOpen", {"textDocument": {
            "uri": uri, "languageId": "python", "version": 1, "text": text}}))
        return uri

    async def apply(self, uri: str, hunk: Hunk) -> None:
        text = self.texts[uri]
        change = {"range": {"start": line_start(text, hunk.first), "end": line_start(text, hunk.last)},
                  "text": "".join(hunk.new_lines)}
        self.texts[uri] = apply_hunk(text, hunk)
        self.versions[uri] += 1
        await self._published(uri, lambda: self.client.notify("textDocument/didChange", {
            "textDocument": {"uri": uri, "version": self.versions[uri]}, "contentChanges": [change]}))

    async def save(self, uri: str) -> SaveCost:
        """Write the file, send didSave, wait for the review to publish; what the review sent to the model."""
        Path(uri.removeprefix("file://")).write_bytes(self.texts[uri].encode("utf-8"))
        before = len(self.llm.requests)
        await self._published(uri, lambda: self.client.notify("textDocument/didSave", {"textDocument": {"uri": uri}}))
        sent = self.llm.requests[before:]
        return SaveCost(len(sent), sum(usage_for(r.body or {}, "")["prompt_tokens"] for r in sent))

    async def clear_review_cache(self) -> None:
        await asyncio.wait_for(self.client.request("workspace/executeCommand", {
            "command": "metagpt.clearReviewCache", "arguments": []}), WAIT_S)

    def close(self, uri: str) -> None:
        self.client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})


async def start_editor(llm: ScriptedLlm, review_cache: Path) -> Editor:
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "METAGPT_LSP_MODEL")}
    environment.update(OPENAI_BASE_URL=llm.base_url, OPENAI_API_KEY="sk-scripted",
                       METAGPT_LSP_REVIEW_CACHE=str(review_cache))
    client = await StdioClient.start(SERVER, env=environment)
    await client.request("initialize", {"processId": None, "rootUri": None, "initializationOptions": OPTIONS,
                                        "capabilities": {"textDocument": {"publishDiagnostics": {
                                            "versionSupport": True}}}})
    client.notify("initialized", {})
    return Editor(client, llm)


# -- the runs -------------------------------------------------------------------------------------------------------

@dataclass
class FileRun:
    name: str
    saves: int = 0
    changed: int = 0
    whole: int = 0
    requests_changed: int = 0
    requests_whole: int = 0
    file_tokens: int = 0
    """The file's own size at each save (characters // 4), summed: a whole file sent as one bare prompt."""
    saves_without_request: int = 0
    unchanged_save_requests: int = 0


async def replay(editor: Editor, root: Path, name: str, steps: list[Hunk], whole_file: bool, run: FileRun) -> None:
    uri = await editor.open(root / name)
    for hunk in steps:
        await editor.apply(uri, hunk)
        if whole_file:
            await editor.clear_review_cache()
        cost = await editor.save(uri)
        if whole_file:
            run.whole += cost.prompt_tokens
            run.requests_whole += cost.requests
        else:
            run.saves += 1
            run.changed += cost.prompt_tokens
            run.requests_changed += cost.requests
            run.file_tokens += len(editor.texts[uri]) // 4
            run.saves_without_request += cost.requests == 0
    if not whole_file:
        run.unchanged_save_requests += (await editor.save(uri)).requests
    editor.close(uri)


async def releases(editor: Editor, work: Path, package: str, old: str, new: str) -> list[FileRun]:
    before, after = python_files(sdist(package, old)), python_files(sdist(package, new))
    changed = {name: text for name, text in before.items() if name in after and after[name] != text}
    committed = repository(work / "committed", changed, commit=True)
    untracked = repository(work / "untracked", changed, commit=False)
    runs = []
    for name in sorted(changed):
        steps = hunks(changed[name], after[name])
        assert "".join(apply_hunks(changed[name], steps)) == after[name], f"replaying {name} does not give {new}"
        run = FileRun(name)
        await replay(editor, committed, name, steps, whole_file=False, run=run)
        await replay(editor, untracked, name, steps, whole_file=True, run=run)
        runs.append(run)
    return runs


def apply_hunks(text: str, steps: list[Hunk]) -> str:
    for hunk in steps:
        text = apply_hunk(text, hunk)
    return text


async def one_function(editor: Editor, work: Path, source: Path) -> tuple[SaveCost, SaveCost, int]:
    """Change one line of Decimal.__add__ and save: the review's cost, a whole-file review's, the file's tokens."""
    text = source.read_text(encoding="utf-8")
    old_line = "            result.int = op1.int - op2.int\n"
    start = text.index(old_line, text.index("    def __add__(self, other, context=None):"))
    line = text.count("\n", 0, start)
    hunk = Hunk(line, line + 1, ("            result.int = abs(op1.int - op2.int)\n",))
    costs = []
    for commit in (True, False):
        root = repository(work / ("pydecimal-committed" if commit else "pydecimal-untracked"),
                          {"_pydecimal.py": text}, commit=commit)
        uri = await editor.open(root / "_pydecimal.py")
        await editor.apply(uri, hunk)
        await editor.clear_review_cache()
        costs.append(await editor.save(uri))
        editor.close(uri)
    return costs[0], costs[1], len(text) // 4


def ratio(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "n/a"


async def main(args: argparse.Namespace) -> int:
    async with ScriptedLlm(default_reply=NO_FINDINGS) as llm:
        with tempfile.TemporaryDirectory(prefix="tokens-per-save-") as folder:
            work = Path(folder)
            editor = await start_editor(llm, work / "review-cache.sqlite3")
            try:
                runs = await releases(editor, work, args.package, args.old, args.new)
                pydecimal = await one_function(editor, work, args.pydecimal) if args.pydecimal.exists() else None
            finally:
                await editor.client.close()

    print(f"{args.package} {args.old} -> {args.new}: each changed .py file replayed hunk by hunk, saved after each")
    print(f"{'file':44} {'saves':>5} {'changed-code tokens':>20} {'whole-file tokens':>18} {'ratio':>7}")
    for run in runs:
        print(f"{run.name:44} {run.saves:5d} {run.changed:20d} {run.whole:18d} {ratio(run.changed, run.whole):>7}")
    saves = sum(run.saves for run in runs)
    changed, whole = sum(run.changed for run in runs), sum(run.whole for run in runs)
    unchanged = sum(run.unchanged_save_requests for run in runs)
    print(f"{'total':44} {saves:5d} {changed:20d} {whole:18d} {ratio(changed, whole):>7}")
    print(f"requests: {sum(r.requests_changed for r in runs)} for changed code, "
          f"{sum(r.requests_whole for r in runs)} for whole files; "
          f"prompt tokens per save: {changed / max(saves, 1):.0f} vs {whole / max(saves, 1):.0f}")
    bare = sum(run.file_tokens for run in runs)
    print(f"saves that sent no request (only layout, comments or annotations changed, code already reviewed, or "
          f"lines deleted): {sum(r.saves_without_request for r in runs)} of {saves}")
    print(f"against the bare file text at each save ({bare} tokens, no instructions): {ratio(changed, bare)}")
    print(f"unchanged saves: {len(runs)}, requests sent: {unchanged}")
    met = saves >= 50 and whole > 0 and changed <= 0.10 * whole and unchanged == 0
    print(f"target (<= 10% over >= 50 saves, 0 requests for an unchanged save): {'met' if met else 'MISSED'}")
    if pydecimal is None:
        print(f"{args.pydecimal} not found: the one-function measurement was skipped")
    else:
        one, full, file_tokens = pydecimal
        print(f"_pydecimal.py, one line of Decimal.__add__ changed and saved: {one.prompt_tokens} prompt tokens in "
              f"{one.requests} request(s); whole-file review {full.prompt_tokens} tokens in {full.requests} "
              f"request(s): {ratio(one.prompt_tokens, full.prompt_tokens)} (of the bare file text, {file_tokens} "
              f"tokens: {ratio(one.prompt_tokens, file_tokens)})")
        small = full.prompt_tokens > 0 and one.prompt_tokens <= 0.03 * full.prompt_tokens
        print(f"target (<= 3% of a whole-file review): {'met' if small else 'MISSED'}")
        met = met and small
    return 0 if met else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--package", default="itsdangerous", help="a small pure-Python package on PyPI")
    parser.add_argument("--old", default="2.1.2", help="the older release (the repository's HEAD)")
    parser.add_argument("--new", default="2.2.0", help="the next release (replayed hunk by hunk)")
    parser.add_argument("--pydecimal", type=Path, default=PYDECIMAL, help="CPython's _pydecimal.py")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
