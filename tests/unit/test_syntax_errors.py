"""Syntax diagnostics say what a person got wrong, on the token where it went wrong.

Each case is a mistake people type, in one of the grammars we ship, with the offending token marked ``⟦…⟧`` in the
source: the problem must carry exactly that message and cover exactly that token. The marks are removed before
parsing, so a test fails the moment a message gets vaguer or its range drifts off the token.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metagpt_lsp.agents.syntax.languages import language_for, parser
from metagpt_lsp.agents.syntax.problems import SyntaxProblem, syntax_problems

CASES = [
    # Python
    ("python", "def f(x⟦)⟧\n    return x\n", 'expected ":" after ")"'),
    ("python", "x = foo(1, 2)⟦)⟧\n", 'unexpected ")"'),
    ("python", "if ⟦x⟧\n  pass\n", 'expected ":" after "x"'),
    ("python", "x = [1, ⟦2⟧\ny = 3\n", 'expected "]" after "2"'),
    ("python", "s = ⟦'abc⟧\nprint(s)\n", "unterminated string"),
    ("python", 'print(⟦"hello"⟧\n', 'expected ")" after ""hello""'),
    ("python", "class ⟦A⟧\n    pass\n", 'expected ":" after "A"'),
    ("python", "for i in range(3⟦)⟧\n    print(i)\n", 'expected ":" after ")"'),
    ("python", "foo(⟦1⟧ 2)\n", 'expected "," after "1"'),
    ("python", "if x:\n    a()\n⟦else⟧\n    b()\n", 'expected ":" after "else"'),
    ("python", "def f(a, b):\n    return a ⟦+⟧\n\ndef g():\n    return 2\n", 'expected an expression after "+"'),
    ("python", "def f():\n    ⟦'''doc⟧\n    return 1\n", "unterminated string"),
    ("python", "x = 1 +⟦*⟧ 2\n", 'unexpected "*"'),
    ("python", "from x ⟦import⟧\n", 'expected a name after "import"'),
    ("python", "try:\n    x()\nexcept ⟦ValueError⟧\n    pass\n", 'expected ":" after "ValueError"'),
    ("python", "class A:\n    def f(self⟦)⟧\n        return 1\n\n    def g(self):\n        return 2\n",
     'expected ":" after ")"'),
    ("python", "x = ⟦(⟧1 +\n", 'unclosed "("'),
    ("python", "def f(x⟦)⟧\r\n    return x\r\n", 'expected ":" after ")"'),
    ("python", "s = ⟦'héllo🎉⟧\nprint(s)\n", "unterminated string"),
    ("python", "x = [1, ⟦'🎉'⟧\r\ny = 3\r\n", 'expected "]" after "\'🎉\'"'),
    ("python", "class A:\n    def f(self, x):\n        return [x, {'a': (1, 2)}]⟦é⟧", 'unexpected "é"'),
    # JavaScript
    ("javascript", "function f() {\n  return 1⟦;⟧\n", 'expected "}" after ";"'),
    ("javascript", "const x = foo(1, 2)⟦)⟧;\n", 'unexpected ")"'),
    ("javascript", "const s = ⟦'abc;⟧\nfoo();\n", "unterminated string"),
    ("javascript", "if (⟦x⟧ {\n  y();\n}\n", 'expected ")" after "x"'),
    ("javascript", "const x = {a: ⟦1⟧ b: 2};\n", 'expected "," after "1"'),
    ("javascript", "function f() {\n  return 1;\n}⟦}⟧\n", 'unexpected "}"'),
    ("javascript", "const o = {\n  a: 1,\n  b: ⟦2⟧\n\nfunction g() {}\n", 'expected "}" after "2"'),
    ("javascript", "const x = 1 ⟦+⟧;\n", 'expected an expression after "+"'),
    ("javascript", "const s = ⟦'日本語;⟧\r\nfoo();\r\n", "unterminated string"),
    # TypeScript
    ("typescript", "function f(x: ⟦number⟧ {\n  return x;\n}\n", 'expected ")" after "number"'),
    ("typescript", "interface I {\n  a: string;\n  ⟦b⟧ number;\n}\n", 'expected ":" after "b"'),
    ("typescript", "let x: number ⟦=⟧ ;\n", 'expected an expression after "="'),
    ("typescript", "type T = {\n  a: ⟦string⟧\n", 'expected "}" after "string"'),
    ("typescript", "const a: number[] = [1, ⟦2⟧;\n", 'expected "]" after "2"'),
    # TSX
    ("tsx", "function A() {\n  return ⟦<div>⟧hello;\n}\n", 'unclosed "<div>"'),
    ("tsx", "function A(props: ⟦Props⟧ {\n  return <div/>;\n}\n", 'expected ")" after "Props"'),
    ("tsx", "const f = (x: number): number => {\n  return x * 2⟦;⟧\n", 'expected "}" after ";"'),
    ("tsx", 'const a = <div className=⟦"a>hi</div>;⟧\n', "unterminated string"),
    # Go
    ("go", "package main\n\nfunc main() {\n\tx := ⟦1⟧\n", 'expected "}" after "1"'),
    ("go", 'package main\n\nfunc main() {\n\tfmt.Println(⟦"hi"⟧\n}\n', 'expected ")" after ""hi""'),
    ("go", "package main\n\nfunc f(a ⟦int⟧ b int) {\n}\n", 'expected "," after "int"'),
    ("go", "package main\n\nfunc main() {\n\tx := f(1, 2)⟦)⟧\n}\n", 'unexpected ")"'),
    ("go", 'package main\n\nfunc main() {\n\ts := ⟦"abc⟧\n}\n', "unterminated string"),
    ("go", "package main\n\nfunc main() {\n\tfor i := 0; i < 3; i++ {\n\t\tfmt.Println(⟦i⟧\n\t}\n}\n",
     'expected ")" after "i"'),
    # Rust
    ("rust", 'fn main() {\n    let x = ⟦5⟧\n    println!("{}", x);\n}\n', 'expected ";" after "5"'),
    ("rust", "fn main() {\n    let x = foo(1, 2)⟦)⟧;\n}\n", 'unexpected ")"'),
    ("rust", 'fn main() {\n    let s = String::from(⟦"abc);⟧\n}\n', "unterminated string"),
    ("rust", "struct S {\n    a: ⟦i32⟧\n    b: i32,\n}\n", 'expected "," after "i32"'),
    ("rust", "fn main() {\n    let x = 1⟦;⟧\n", 'expected "}" after ";"'),
    ("rust", "fn add(a: i32, b: i32) -> i32 {\n    a + ⟦b⟧\n\nfn main() {}\n", 'expected "}" after "b"'),
    # Java
    ("java", "class A {\n  void f() {\n    int x = ⟦5⟧\n    g();\n  }\n}\n", 'expected ";" after "5"'),
    ("java", 'class A {\n  void f() {\n    System.out.println("hi"⟦)⟧\n  }\n}\n', 'expected ";" after ")"'),
    ("java", "class A {\n  void f() {\n    g(1, 2)⟦)⟧;\n  }\n}\n", 'unexpected ")"'),
    ("java", 'class A {\n  String s = ⟦"abc;⟧\n}\n', "unterminated string"),
    ("java", "class A {\n  void f() {\n    if (x > ⟦1⟧ {\n      g();\n    }\n  }\n}\n", 'expected ")" after "1"'),
    ("java", "class A {\n  void f() {\n    int[] a = new int[⟦3⟧;\n  }\n}\n", 'expected "]" after "3"'),
    ("java", "class A {\n  void f() {\n    ⟦return⟧\n  }\n}\n", 'expected ";" after "return"'),
]


def _marked(text: str) -> tuple[bytes, int, int]:
    """The source without its ``⟦…⟧`` marks, and the byte range they enclosed."""
    before, rest = text.split("⟦", 1)
    marked, after = rest.split("⟧", 1)
    start = len(before.encode())
    return (before + marked + after).encode(), start, start + len(marked.encode())


def _problems(language: str, source: bytes) -> list[SyntaxProblem]:
    tree = parser(language_for(language)).parse(source)
    return syntax_problems(tree, source)


@pytest.mark.parametrize(("language", "marked", "message"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_a_common_mistake_is_named_on_its_token(language: str, marked: str, message: str) -> None:
    source, start, end = _marked(marked)
    problems = _problems(language, source)
    found = [(p.message, source[p.start_byte:p.end_byte].decode()) for p in problems]
    assert found == [(message, source[start:end].decode())]


def test_the_table_covers_every_shipped_language_with_many_mistakes() -> None:
    assert len(CASES) >= 25
    assert {case[0] for case in CASES} == {"python", "javascript", "typescript", "tsx", "go", "rust", "java"}


CLEAN = {
    "python": "class A:\n    def f(self, x):\n        return [x, {'a': (1, 2)}]\n",
    "javascript": "function f(x) {\n  return [x, {a: (1 + 2)}];\n}\n",
    "typescript": "interface I { a: string }\nfunction f(x: number): number[] {\n  return [x];\n}\n",
    "tsx": "function A(p: { n: number }) {\n  return <div className=\"a\">{p.n}</div>;\n}\n",
    "go": "package main\n\nfunc main() {\n\tx := []int{1, 2}\n\t_ = x\n}\n",
    "rust": "fn main() {\n    let v = vec![1, 2];\n    println!(\"{:?}\", v);\n}\n",
    "java": "class A {\n  int f(int x) {\n    return new int[]{x}[0];\n  }\n}\n",
}


@pytest.mark.parametrize("language", sorted(CLEAN))
def test_clean_code_has_no_problems(language: str) -> None:
    assert _problems(language, CLEAN[language].encode()) == []


def test_no_tree_means_no_problems() -> None:
    assert syntax_problems(None, b"anything") == []


def _python_module(functions: int) -> str:
    return "".join(
        f"class Shape{n}:\n"
        f'    """A shape, number {n}.\n\n    Its area is computed lazily.\n    """\n\n'
        f"    def area(self, scale):\n"
        f"        if scale > {n}:\n"
        f"            return [scale * {n}, (scale, {n})]\n"
        f"        return {{'n': {n}}}\n\n"
        for n in range(functions)
    )


def test_one_mistake_in_a_big_python_file_is_one_problem_on_its_line() -> None:
    """Indentation languages echo one mistake far away; the echo is not reported, the mistake is."""
    text = _python_module(400)
    line = "    def area(self, scale):\n"
    middle = text.index(line, len(text) // 2)
    broken = text[:middle] + "    def area(self, scale)\n" + text[middle + len(line):]
    source = broken.encode()
    problems = _problems("python", source)
    offset = len(broken[:middle].encode()) + len("    def area(self, scale")
    assert [(p.message, p.start_byte) for p in problems] == [('expected ":" after ")"', offset)]


def test_two_separate_mistakes_are_two_problems() -> None:
    text = _python_module(60)
    lines = text.splitlines(keepends=True)
    headers = [index for index, line in enumerate(lines) if line.startswith("    def area")]
    first, second = headers[2], headers[-3]
    for index in (first, second):
        lines[index] = lines[index].replace("):", ")")
    source = "".join(lines).encode()
    problems = _problems("python", source)
    rows = [source.count(b"\n", 0, p.start_byte) for p in problems]
    assert [p.message for p in problems] == ['expected ":" after ")"'] * 2
    assert rows == [first, second]


def test_the_trial_budget_counts_bytes_parsed_and_past_it_errors_get_the_cheap_explanation() -> None:
    """Trial repair's budget is work counted, not time: the same answers on a fast machine and on a busy one."""
    text = _python_module(60)
    line = "    def area(self, scale):\n"
    middle = text.index(line, len(text) // 2)
    source = (text[:middle] + "    def area(self, scale)\n" + text[middle + len(line):]).encode()
    tree = parser(language_for("python")).parse(source)
    full = syntax_problems(tree, source)
    assert [p.message for p in full] == ['expected ":" after ")"']
    assert syntax_problems(tree, source) == full, "the same answer every time"
    starved = syntax_problems(tree, source, budget_bytes=0)
    assert starved and [p.message for p in starved] != [p.message for p in full], "no trials: a cheaper wording"


def test_a_missing_semicolon_in_a_big_java_class_is_one_problem() -> None:
    methods = "".join(f"  int m{n}(int x) {{\n    int y = x * {n};\n    return y + {n};\n  }}\n\n" for n in range(300))
    text = f"class Big {{\n{methods}}}\n"
    target = "    int y = x * 150;\n"
    broken = text.replace(target, "    int y = x * 150\n")
    source = broken.encode()
    problems = _problems("java", source)
    offset = len(broken[:broken.index("x * 150")].encode()) + len("x * ")
    found = [(p.message, p.start_byte, p.end_byte) for p in problems]
    assert found == [('expected ";" after "150"', offset, offset + 3)]


_SAMPLES = {
    "python": "def f(x, y=[1, 2]):\n    if x:\n        return {'a': (x, y)}\n    return f'{x}'\n",
    "javascript": "function f(x) {\n  if (x) { return [x, `t${x}`]; }\n  return {a: (1 + 2)};\n}\n",
    "go": "package main\n\nfunc f(x int) []int {\n\tif x > 0 {\n\t\treturn []int{x}\n\t}\n\treturn nil\n}\n",
    "rust": "fn f(x: i32) -> Vec<i32> {\n    if x > 0 { return vec![x]; }\n    Vec::new()\n}\n",
    "java": "class A {\n  int[] f(int x) {\n    if (x > 0) { return new int[]{x}; }\n    return null;\n  }\n}\n",
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    language=st.sampled_from(sorted(_SAMPLES)),
    position=st.floats(min_value=0, max_value=1),
    removed=st.integers(min_value=0, max_value=3),
    inserted=st.sampled_from(["", "(", ")", "{", "}", "[", "]", ":", ";", ",", "'", '"', "+", "\n", "é", "🎉"]),
)
def test_any_typo_gets_problems_a_person_can_read(
    language: str, position: float, removed: int, inserted: str,
) -> None:
    """Whatever the typo: no crash; problems exactly when the tree has errors; ranges inside the source."""
    text = _SAMPLES[language]
    at = int(position * len(text))
    source = (text[:at] + inserted + text[at + removed:]).encode()
    tree = parser(language_for(language)).parse(source)
    problems = syntax_problems(tree, source)
    assert bool(problems) == tree.root_node.has_error
    for problem in problems:
        assert 0 <= problem.start_byte <= problem.end_byte <= len(source)
        assert problem.message and "ERROR" not in problem.message and "MISSING" not in problem.message
        assert problem.end_byte - problem.start_byte <= 80, "a range is a token, not a region"
