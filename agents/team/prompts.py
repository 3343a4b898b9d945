"""The questions the agents ask, one focused question per call, worded for small local models as well as big ones.

Each builder returns chat messages. Code goes to the model in fenced blocks and comes back in a fenced block, never
inside a JSON string; JSON is asked only for short fields (a cause, a quoted line, a message). ``PROMPT_VERSION``
changes whenever a prompt changes, so cached reviews made with an older prompt are not reused.
"""

from __future__ import annotations

from .prompt_context import PromptContext

PROMPT_VERSION = "p6"
Messages = list[dict[str, str]]

EXPLAIN_SCHEMA = {
    "type": "object",
    "properties": {
        "cause": {"type": "string", "maxLength": 400},
        "line": {"type": "string", "maxLength": 200},
    },
    "required": ["cause"],
}

CHALLENGE_SCHEMA = {
    "type": "object",
    "properties": {
        "call": {"type": "string", "maxLength": 240},
        "expected": {"type": "string", "maxLength": 120},
        "actual": {"type": "string", "maxLength": 120},
        "real": {"type": "boolean"},
    },
    "required": ["call", "expected", "actual", "real"],
}

REVIEW_SCHEMA = {
    "type": "object",
    "properties": {
        "findings": {
            "type": "array",
            "maxItems": 5,
            "items": {
                "type": "object",
                "properties": {
                    "quote": {"type": "string", "maxLength": 160},
                    "problem": {"type": "string", "maxLength": 240},
                    "severity": {"type": "string", "enum": ["error", "warning", "info"]},
                },
                "required": ["quote", "problem"],
            },
        },
    },
    "required": ["findings"],
}


SYSTEM = {"role": "system", "content": "You are one of a small team of expert programmers: diagnosis, generation "
                                       "and review. Answer exactly what is asked, briefly."}
"""One system message for every agent, and the questions of a fix start with the code they are about: consecutive
questions on the same code (diagnosis, then generation's rounds) share their first tokens, and a llama.cpp server
reuses them instead of reading them again (on 2 cores the prompt, not the answer, is most of the time). Each agent's
role is said after the shared part. Review's question keeps its instruction before the code: asked code first, the
1.5B model no longer found the `- 1` in examples/stats.py's `mean`."""


def _ask(shared: str, role: str, question: str) -> Messages:
    """The messages of one question: the shared system message, then the code it is about, then who asks what."""
    return [SYSTEM, {"role": "user", "content": f"{shared}\n\nYou are the team's {role}. {question}"}]


def explain(context: PromptContext, target: str, diagnostic: str, examples_of: str | None = None,
            reproduced: str = "") -> Messages:
    """The cause and the line; with ``examples_of`` (a function name, when code may run) also up to three examples
    of its correct behaviour, as data: a call with literal arguments and the literal it should return. With
    ``reproduced`` (its own example that fails, run just now) that evidence is quoted."""
    seen = f"\nRunning its own example: {reproduced}.\n" if reproduced else ""
    examples = ""
    if examples_of:
        examples = (f", \"examples\": up to 3 calls of {examples_of} that show what it should do, as its docstring "
                    f"says, each {{\"call\": \"{examples_of}(...)\" with only literal arguments, \"returns\": the "
                    "correct result as a Python literal}")
    return _ask(context.render(), "diagnosis agent", (
        f"A tool reports this problem in the code below:\n{diagnostic}\n{seen}\n"
        f"```{context.language}\n{target}\n```\n\n"
        "What causes it? Reply in JSON: {\"cause\": one or two sentences, "
        f"\"line\": the one line of code that must change, copied exactly{examples}}}."))


def repair_unit(context: PromptContext, subject: str, diagnostic: str, rejections: tuple[str, ...]) -> Messages:
    """The unguided whole-unit repair: what one direct call would be asked — the code and the problem, no cause
    from diagnosis, the whole function back (its shape may change)."""
    earlier = _earlier(rejections)
    return _ask(context.render(), "programmer", (
        f"Problem in {subject}: {diagnostic}{earlier}\n\n"
        f"Rewrite this code so the problem is gone: find the bug and fix it. Reply with the complete fixed "
        f"{subject.split(' ', 1)[1]} in one ```{context.language} block, nothing else."))


def propose_fix(context: PromptContext, target: str, diagnostic: str, hint: str, rejections: tuple[str, ...],
                subject: str | None = None) -> Messages:
    """Ask for the corrected code. ``hint`` is what diagnosis offers (a suspect line, or a cause), worded by the
    caller as sure or as a guess; ``subject`` names the function when the target is the whole function the context
    already shows (then it is not sent twice), else the target code is shown and exactly it is asked back."""
    earlier = _earlier(rejections)
    hint = f"\n{hint}" if hint else ""
    if subject is not None:
        what, code = f"the corrected {subject}", ""
    else:
        what = "the corrected version of exactly this code"
        code = f"\n\n```{context.language}\n{target}\n```"
    return _ask(context.render(), "programmer", (
        f"Problem{f' in {subject}' if subject else ''}: {diagnostic}{hint}{earlier}\n\n"
        f"Rewrite this code so the problem is gone: find the bug and fix it, changing as little as possible and "
        f"keeping names and signatures. Reply with {what} in one ```{context.language} block, nothing else.{code}"))


def _earlier(rejections: tuple[str, ...]) -> str:
    """Why the last attempts were rejected (what they gave, when examples ran), for the next round."""
    if not rejections:
        return ""
    earlier = "\n\nEarlier attempts were rejected:\n" + "\n".join(f"- {reason}" for reason in rejections[-3:])
    if any("identical" in reason for reason in rejections[-3:]):
        earlier += "\nThe code is wrong as it stands: something in it must change."
    return earlier


def generate(context: PromptContext, kind: str, instruction: str, target: str) -> Messages:
    if kind == "stub":
        ask = (f"Implement this function. Keep its signature and docstring. Reply with the complete function in "
               f"one ```{context.language} block, nothing else.\n\n```{context.language}\n{target}\n```")
    elif kind == "comment":
        ask = (f"Write the code that this comment asks for: {instruction}\nReply with only that code, in one "
               f"```{context.language} block, nothing else.")
    else:
        ask = (f"Write the code that belongs at <CURSOR> in:\n```{context.language}\n{target}\n```\n"
               f"Reply with only the text to insert at <CURSOR>, in one ```{context.language} block.")
    return _ask(context.render(), "programmer", ask)


def review(language: str, unit_text: str, context: PromptContext | None = None) -> Messages:
    around = ""
    if context is not None and (context.imports or context.signatures):  # the unit itself follows: not twice
        around = f"{context.render(include_focus=False)}\n\n"
    return [SYSTEM, {"role": "user", "content": (
        f"{around}You are the team's code reviewer. Review this code for bugs: wrong logic, crashes, resource leaks, "
        "security holes. Ignore style.\n\n"
        f"```{language}\n{unit_text}\n```\n\n"
        "Reply in JSON: {\"findings\": [{\"quote\": the exact code of the faulty line, \"problem\": what is "
        "wrong and why, \"severity\": \"error\" or \"warning\"}]}. Reply {\"findings\": []} when it is correct.")}]


def challenge(context: PromptContext, unit_text: str, quote: str, problem: str, name: str) -> Messages:
    """Cross-examine one review finding: a concrete call of ``name``, what it should give and what this code gives —
    asked as data (literals), worked out before the verdict so a small model reasons before it answers. The call is
    asked whole, with the function's name, so that it is written against the signature (asked for bare arguments
    with an example, the 1.5B model copied the example's arguments whatever the signature)."""
    return _ask(f"{_around(context)}```{context.language}\n{unit_text}\n```", "diagnosis agent", (
        f"A reviewer claims this line is a bug:\n{quote}\nClaim: {problem}\n\n"
        f"Check the claim. Pick one concrete call of {name} with valid inputs (as its parameters and docstring "
        "allow) that would show the bug. Work out what the docstring or the function's purpose says it must "
        "return, then trace what this code really returns. Reply in JSON: {\"call\": the call as Python, "
        f"{name}(...) with literal arguments, \"expected\": the correct result as a Python literal, \"actual\": "
        "what this code returns (a Python literal) or the exception it raises, \"real\": true only if actual "
        "differs from expected}."))


def _around(context: PromptContext) -> str:
    around = context.render(include_focus=False)
    return f"{around}\n\n" if around else ""
