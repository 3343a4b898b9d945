"""How long syntax diagnostics take on a big file with one typing mistake in it.

``syntax_problems`` runs on every keystroke, so its cost with an error present must stay far below a frame:
target < 5 ms per call on _pydecimal.py (6,425 lines). Each case breaks the file in one place, parses it once, then
times ``syntax_problems`` alone (median and worst of the repeats) and prints the message it gives.

    python benchmarks/syntax_problems_latency.py [FILE] [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from metagpt_lsp.agents.syntax.languages import language_for, parser
from metagpt_lsp.agents.syntax.problems import syntax_problems

_DEFAULT_FILE = Path(__file__).resolve().parents[1].parent / "shared/data/perf/cpython-3.11.7/_pydecimal.py"


def _cases(source: bytes) -> list[tuple[str, bytes]]:
    """(description, broken source) pairs: one mistake each, near the top, in the middle and near the end."""
    cases = [("clean file", source)]
    for fraction in (0.1, 0.5, 0.9):
        header = source.find(b"    def ", int(len(source) * fraction))
        colon = source.index(b":\n", header)
        line = source.count(b"\n", 0, colon) + 1
        cases.append((f'missing ":" on line {line}', source[:colon] + source[colon + 1:]))
    for fraction in (0.3, 0.7):
        call = source.find(b"(", source.find(b"\n        return ", int(len(source) * fraction)))
        line = source.count(b"\n", 0, call) + 1
        cases.append((f'extra ")" on line {line}', source[:call] + b")" + source[call:]))
        cases.append((f'unclosed "(" on line {line}', source[:call + 1] + b"(" + source[call + 1:]))
        cases.append((f"unterminated string on line {line}", source[:call + 1] + b"'" + source[call + 1:]))
    return cases


def _line_of(source: bytes, offset: int) -> int:
    return source.count(b"\n", 0, offset) + 1


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("file", nargs="?", type=Path, default=_DEFAULT_FILE)
    arguments.add_argument("--repeat", type=int, default=30)
    options = arguments.parse_args()
    source = options.file.read_bytes()
    language = language_for(None, str(options.file))
    if language is None:
        raise SystemExit(f"no grammar for {options.file}")
    lines = source.count(b"\n")
    print(f"{options.file.name}: {lines} lines, {len(source)} bytes; {options.repeat} calls per case")
    for description, broken in _cases(source):
        tree = parser(language).parse(broken)
        timings = []
        for _ in range(options.repeat):
            began = time.perf_counter()
            problems = syntax_problems(tree, broken)
            timings.append((time.perf_counter() - began) * 1000)
        shown = "; ".join(f"line {_line_of(broken, p.start_byte)}: {p.message}" for p in problems[:3]) or "none"
        print(
            f"  {description:<34} median {statistics.median(timings):6.2f} ms  max {max(timings):6.2f} ms"
            f"  {len(problems)} problem(s): {shown}"
        )


if __name__ == "__main__":
    main()
