"""A second fix set the team was never tuned on: one-operator mutants of a well-tested PyPI package, kept only when
the package's own tests catch them.

The package is ``toolz`` (pure Python, BSD; its sdist carries its pytest suite, which runs in about a second per
module). For each top-level function of ``toolz/itertoolz.py`` and ``toolz/dicttoolz.py`` every mutation site is
listed with ``ast`` — a comparison flipped (``<`` / ``<=``, ``==`` / ``!=``, ``in`` / ``not in``, ``is`` /
``is not``), an arithmetic operator swapped (``+`` / ``-``, ``*`` / ``//``), an integer constant shifted by one, the
first two positional arguments of a call swapped, a ``not`` dropped — and one mutant per function is drawn
(seeded), applied, and kept when the module's test file then fails (or hangs). Both versions of each function are
``ast.unparse``d, so they differ only in the mutation.

The set is written to ``benchmarks/.cache/mutants-toolz.json`` — reusable by any harness (the review benchmark
reads its buggy/correct pairs):

    {"package": "toolz-1.2.0", "package_root": ".../benchmarks/.cache/toolz-1.2.0",
     "mutants": [{"id", "module", "function", "mutation", "line",        # line: 1-based, in the unit file
                  "correct_function", "buggy_function",                   # the function alone
                  "correct_unit", "buggy_unit",                           # what a fix sees: imports + function
                  "module_path", "test_command"}]}                         # test_command runs in a copy of the root

:func:`score_function` puts a function's text back into its module in a temporary copy of the package and runs its
tests: ``fixed`` (they pass), ``wrong`` (they fail or hang), ``broken`` (it does not parse).

    python benchmarks/mutants.py [--count 24] [--seed 12]
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

CACHE = Path(__file__).parent / ".cache"
PACKAGE, VERSION = "toolz", "1.2.0"
ROOT = CACHE / f"{PACKAGE}-{VERSION}"
SET_FILE = CACHE / f"mutants-{PACKAGE}.json"
MODULES = {"toolz/itertoolz.py": "toolz/tests/test_itertoolz.py",
           "toolz/dicttoolz.py": "toolz/tests/test_dicttoolz.py"}
TEST_TIMEOUT_S = 60.0

_FLIPS: dict[type, type] = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
                            ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot,
                            ast.IsNot: ast.Is, ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.FloorDiv,
                            ast.FloorDiv: ast.Mult}


def fetch_package() -> Path:
    """The package's sdist, unpacked under ``benchmarks/.cache`` (pip downloads it once)."""
    if ROOT.exists():
        return ROOT
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps", "-q",
                    f"{PACKAGE}=={VERSION}", "-d", str(CACHE)], check=True)
    with tarfile.open(CACHE / f"{PACKAGE}-{VERSION}.tar.gz") as archive:
        archive.extractall(CACHE, filter="data")
    return ROOT


def mutation_sites(function: ast.FunctionDef) -> Iterator[tuple[str, list[int]]]:
    """(description, path of child indexes to the node) for every place one mutation applies."""
    for path, node in _walk(function, []):
        if isinstance(node, ast.Compare):
            for index, op in enumerate(node.ops):
                if type(op) in _FLIPS:
                    yield f"compare {_op(op)} -> {_op(_FLIPS[type(op)]())}#{index}", path
        elif isinstance(node, ast.BinOp) and type(node.op) in _FLIPS:
            yield f"arithmetic {_op(node.op)} -> {_op(_FLIPS[type(node.op)]())}", path
        elif (isinstance(node, ast.Constant) and type(node.value) is int and path
              and not _in_docstring(function, node)):
            yield f"constant {node.value} -> {node.value + 1}", path
        elif isinstance(node, ast.Call) and len([a for a in node.args if not isinstance(a, ast.Starred)]) >= 2:
            yield "swap the first two arguments", path
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            yield "drop a not", path


def _op(op: ast.AST) -> str:
    return {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=", ast.In: "in",
            ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not", ast.Add: "+", ast.Sub: "-", ast.Mult: "*",
            ast.FloorDiv: "//"}[type(op)]


def _in_docstring(function: ast.FunctionDef, node: ast.AST) -> bool:
    return bool(function.body) and node is getattr(function.body[0], "value", None)


def _walk(node: ast.AST, path: list[int]) -> Iterator[tuple[list[int], ast.AST]]:
    yield path, node
    for index, child in enumerate(ast.iter_child_nodes(node)):
        yield from _walk(child, [*path, index])


def mutate(function: ast.FunctionDef, description: str, path: list[int]) -> ast.FunctionDef:
    mutant = copy.deepcopy(function)
    parent: ast.AST | None = None
    node: ast.AST = mutant
    for index in path:
        parent, node = node, list(ast.iter_child_nodes(node))[index]
    if isinstance(node, ast.Compare):
        which = int(description.rsplit("#", 1)[1])
        node.ops[which] = _FLIPS[type(node.ops[which])]()
    elif isinstance(node, ast.BinOp):
        node.op = _FLIPS[type(node.op)]()
    elif isinstance(node, ast.Constant):
        node.value += 1
    elif isinstance(node, ast.Call):
        first, second = [i for i, a in enumerate(node.args) if not isinstance(a, ast.Starred)][:2]
        node.args[first], node.args[second] = node.args[second], node.args[first]
    elif isinstance(node, ast.UnaryOp) and parent is not None:
        _replace_child(parent, node, node.operand)
    return mutant


def _replace_child(parent: ast.AST, old: ast.AST, new: ast.AST) -> None:
    for name, value in ast.iter_fields(parent):
        if value is old:
            setattr(parent, name, new)
        elif isinstance(value, list):
            parent_list = value
            for index, item in enumerate(parent_list):
                if item is old:
                    parent_list[index] = new


def unit_file(module_source: str, module_name: str, function_text: str, function_name: str) -> str:
    """What a fix sees: the module imports the function uses, its module's names it uses, then the function."""
    tree = ast.parse(module_source)
    used = {n.id for n in ast.walk(ast.parse(function_text)) if isinstance(n, ast.Name)}
    lines: list[str] = []
    defined: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a for a in node.names if (a.asname or a.name).split(".")[0] in used]
            if names:
                kept = copy.deepcopy(node)
                kept.names = names
                lines.append(ast.unparse(kept))
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, ast.Assign):
            defined.update(t.id for t in node.targets if isinstance(t, ast.Name))
    own = sorted((defined & used) - {function_name})
    if own:
        lines.append(f"from {module_name} import {', '.join(own)}")
    header = "\n".join(lines)
    return (header + "\n\n\n" if header else "") + function_text + "\n"


def splice(module_source: str, function_name: str, function_text: str) -> str:
    """The module with its top-level function ``function_name`` replaced by ``function_text``."""
    tree = ast.parse(module_source)
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function_name)
    first = min([node.lineno] + [d.lineno for d in node.decorator_list])
    lines = module_source.splitlines(keepends=True)
    return "".join(lines[:first - 1]) + function_text.rstrip("\n") + "\n" + "".join(lines[node.end_lineno:])


def run_package_tests(module_path: str, module_text: str, test_file: str, timeout_s: float = TEST_TIMEOUT_S,
                      root: Path = ROOT) -> tuple[bool, str]:
    """Run ``test_file`` in a temporary copy of the package with ``module_path`` holding ``module_text``."""
    with tempfile.TemporaryDirectory(prefix="mutant-tests-") as folder:
        copy_root = Path(folder) / root.name
        shutil.copytree(root, copy_root, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        (copy_root / module_path).write_text(module_text, encoding="utf-8")
        command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-p", "no:asyncio",
                   test_file]
        env = {**os.environ, "PYTHONPATH": str(copy_root), "PYTHONDONTWRITEBYTECODE": "1"}
        process = subprocess.Popen(command, cwd=copy_root, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            output, _ = process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            return False, f"the tests did not finish within {timeout_s:g} s"
        tail = [line for line in output.strip().splitlines() if line.strip()][-1:] or [""]
        return process.returncode == 0, tail[0][:200]


def score_function(mutant: dict, function_text: str | None, timeout_s: float = TEST_TIMEOUT_S) -> tuple[str, str]:
    """fixed / wrong / broken for a fixed function's text (None: no-edit)."""
    if function_text is None:
        return "no-edit", "no fix"
    try:
        tree = ast.parse(function_text)
    except SyntaxError:
        return "broken", "the fixed code does not parse"
    node = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == mutant["function"]), None)
    if node is None:
        return "wrong", f"no function {mutant['function']} in the fix"
    module = (ROOT / mutant["module_path"]).read_text(encoding="utf-8")
    passed, detail = run_package_tests(mutant["module_path"], splice(module, mutant["function"],
                                                                     ast.get_source_segment(function_text, node)
                                                                     or ast.unparse(node)),
                                       mutant["test_file"], timeout_s)
    return ("fixed" if passed else "wrong"), detail


def build(count: int, seed: int) -> list[dict]:
    root = fetch_package()
    rng = random.Random(seed)
    candidates: list[tuple[str, ast.FunctionDef, str, list[int]]] = []
    for module_path in MODULES:
        tree = ast.parse((root / module_path).read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_") and not node.decorator_list:
                sites = list(mutation_sites(node))
                rng.shuffle(sites)
                candidates += [(module_path, node, description, path) for description, path in sites[:3]]
    rng.shuffle(candidates)
    kept: list[dict] = []
    used: set[str] = set()
    sound: dict[str, bool] = {}
    for module_path, node, description, path in candidates:
        if len(kept) >= count:
            break
        if node.name in used:
            continue
        module_source = (root / module_path).read_text(encoding="utf-8")
        module_name = module_path[:-3].replace("/", ".")
        correct = ast.unparse(node)
        buggy = ast.unparse(mutate(node, description, path))
        if buggy == correct:
            continue
        test_file = MODULES[module_path]
        if node.name not in sound:
            sound[node.name] = run_package_tests(module_path, splice(module_source, node.name, correct), test_file)[0]
        if not sound[node.name]:
            continue  # unparsing the function changed its behaviour or the suite fails anyway: not usable
        caught = not run_package_tests(module_path, splice(module_source, node.name, buggy), test_file, 20.0)[0]
        print(f"{node.name:20} {description:40} {'caught' if caught else 'not caught'}", flush=True)
        if not caught:
            continue
        used.add(node.name)
        buggy_unit = unit_file(module_source, module_name, buggy, node.name)
        changed = next(i for i, (a, b) in enumerate(zip(
            unit_file(module_source, module_name, correct, node.name).splitlines(), buggy_unit.splitlines(),
            strict=False)) if a != b) + 1
        kept.append({"id": f"{module_name.rsplit('.', 1)[1]}.{node.name}", "module": module_name,
                     "function": node.name, "mutation": description.split("#")[0], "line": changed,
                     "correct_function": correct, "buggy_function": buggy,
                     "correct_unit": unit_file(module_source, module_name, correct, node.name),
                     "buggy_unit": buggy_unit, "module_path": module_path, "test_file": test_file,
                     "test_command": f"python -m pytest -q -x -p no:asyncio {test_file}"})
    return kept


def load_set() -> list[dict]:
    return json.loads(SET_FILE.read_text(encoding="utf-8"))["mutants"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=24, help="mutants to keep (one per function)")
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args(argv)
    mutants = build(args.count, args.seed)
    SET_FILE.write_text(json.dumps({"package": f"{PACKAGE}-{VERSION}", "package_root": str(ROOT.resolve()),
                                    "mutants": mutants}, indent=1), encoding="utf-8")
    print(f"{len(mutants)} mutants caught by the package's tests -> {SET_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
