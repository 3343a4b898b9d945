"""The diagnosis agent: explains the cause of a diagnostic and picks the smallest node an edit may replace.

It watches ``subtask.explain`` and ``subtask.challenge``. To explain: a syntax error of our own needs no model (the
parser already said what is wrong); neither does a diagnostic that came with its cause (our review's findings carry
one). Anything else — a type error, a linter's code, a failing test — is one focused question to the model: the
cause in a sentence or two and the one line that must change. That quoted line, found in the text (never by a
model's line number), widens the target when the diagnostic itself points elsewhere. Where code may run, diagnosis
first reproduces the problem: it runs the function's own ``>>>`` examples on the code as it stands (in the sandbox).
One that fails is evidence the question quotes ("`f(2)` gives 3, its docstring says 4"), and then no examples are
asked of the model (the user's own ones already show the bug, and a written one is often wrong); when none fails,
the model also writes up to three examples as data.

A challenge comes from review (along review -> diagnosis): for each proposed finding, one question — is it a real
defect, and which call shows it — answered as data (the call's arguments and both results as Python literals), never
as code. An answer that is not such data counts as no answer: the finding stays unconfirmed.
"""

from __future__ import annotations

import ast
import asyncio
import logging

from ..broker.messages import Message, MessageKind
from ..broker.subscription import HandlerContext
from ..edits.anchoring import locate_snippet
from ..edits.examples import file_path_of, run_examples
from ..llm.client import LlmClient
from ..llm.errors import LlmBadReply
from ..syntax.code_units import target_node, unit_node_at
from ..syntax.snapshot import DocumentSnapshot
from . import prompts
from .payloads import Challenge, ChallengeAnswer, Claim, Explanation, Finding, FixRequest
from .prompt_context import context_for, review_context
from .written_examples import EXAMPLES_SCHEMA, function_name_at, parse_examples

log = logging.getLogger(__name__)

SYNTAX_SOURCES = frozenset({"metagpt-lsp"})


class DiagnosisAgent:
    name = "diagnosis"
    watches = (MessageKind.SUBTASK_EXPLAIN, MessageKind.SUBTASK_CHALLENGE)
    concurrency = 4

    def __init__(self, llm: LlmClient) -> None:
        self.llm = llm

    async def handle(self, message: Message, context: HandlerContext) -> None:
        if message.kind is MessageKind.SUBTASK_CHALLENGE:
            context.reply(await self.challenge(message.payload_as(Challenge), context.task_id))
        else:
            context.reply(await self.explain(message.payload_as(FixRequest), context.task_id))

    async def challenge(self, challenge: Challenge, task_id: str) -> ChallengeAnswer:
        """One question per finding, asked side by side; a reply that is not the asked data is no answer."""
        context = review_context(challenge.snapshot, challenge.unit.start_byte, challenge.unit.end_byte)

        async def ask(finding: Finding) -> Claim | None:
            try:
                answer = await self.llm.complete_json(
                    prompts.challenge(context, challenge.unit.text, finding.quote, finding.message,
                                      challenge.unit.name),
                    prompts.CHALLENGE_SCHEMA, task_id=task_id, max_tokens=200)
            except LlmBadReply as error:
                log.info("no answer to the challenge of %s: %s", challenge.unit.name, error)
                return None
            return claim_from(answer)

        return ChallengeAnswer(tuple(await asyncio.gather(*(ask(f) for f in challenge.findings))))

    async def explain(self, request: FixRequest, task_id: str) -> Explanation:
        snapshot = request.snapshot
        target = target_node(snapshot, request.start_byte, request.end_byte)
        if target is None:
            raise ValueError("the document has no syntax tree (unknown language or too large): nothing to target")
        if request.known_cause:
            return Explanation(request.known_cause, target.start_byte, target.end_byte)
        if cause_is_known(request):
            return Explanation(f"Syntax error: {request.message}.", target.start_byte, target.end_byte)
        target_text = snapshot.source[target.start_byte:target.end_byte].decode("utf-8", "surrogatepass")
        examples_of = function_name_at(snapshot, target.start_byte, target.end_byte) if request.run_code else None
        reproduced = await reproduce(snapshot, examples_of) if examples_of else ""
        if reproduced:
            examples_of = None
        schema = prompts.EXPLAIN_SCHEMA if not examples_of else {
            **prompts.EXPLAIN_SCHEMA, "properties": {"cause": {"type": "string", "maxLength": 400},
                                                     "line": {"type": "string", "maxLength": 200},
                                                     "examples": EXAMPLES_SCHEMA}}
        answer = await self.llm.complete_json(
            prompts.explain(context_for(snapshot, target.start_byte, target.end_byte), target_text,
                            _describe(request), examples_of, reproduced),
            schema, task_id=task_id, max_tokens=360 if examples_of else 200)
        examples = parse_examples(answer.get("examples"), examples_of)
        cause = str(answer.get("cause") or "").strip() or request.message
        suspect = str(answer.get("line") or "").strip()
        start, end = target.start_byte, target.end_byte
        unit = unit_node_at(snapshot, start, end)
        within = (unit.start_byte, unit.end_byte) if unit is not None else None
        found = locate_snippet(snapshot, suspect, within) if suspect else None
        if found is not None and not (start <= found[0] and found[1] <= end):
            widened = target_node(snapshot, min(start, found[0]), max(end, found[1]))
            if widened is not None and (unit is None or (unit.start_byte <= widened.start_byte
                                                         and widened.end_byte <= unit.end_byte)):
                start, end = widened.start_byte, widened.end_byte
        return Explanation(cause, start, end, suspect, examples, reproduced)


async def reproduce(snapshot: DocumentSnapshot, function_name: str) -> str:
    """The first of the function's own examples that fails on the code as it stands, as evidence; empty when they
    pass, there are none, or they could not run."""
    run = await run_examples(snapshot.text, function_name, file_path_of(snapshot.uri))
    if not run.failed:
        return ""
    return run.first_failure.evidence() if run.first_failure is not None else run.summary


def claim_from(answer: object) -> Claim | None:
    """Diagnosis's answer to a challenge as a ``Claim``; None when it is not the asked JSON."""
    if not isinstance(answer, dict):
        return None
    real = answer.get("real")
    if isinstance(real, str) and real.strip().lower() in ("true", "false"):
        real = real.strip().lower() == "true"
    if not isinstance(real, bool):
        return None

    def text(key: str) -> str:
        value = answer.get(key)
        return "" if value is None else (value if isinstance(value, str) else repr(value)).strip()

    return Claim(real, _call_arguments(text("call")), text("expected"), text("actual"), text("why"))


def _call_arguments(call: str) -> str:
    """The text between the parentheses of the one call ``call`` is ("mean([2, 4])" -> "[2, 4]"); empty when it is
    not a call (then the claim names nothing to run). The name called is not checked: arguments that do not fit the
    function under review are caught when they are bound to its signature, before anything runs."""
    try:
        node = ast.parse(call.strip(), mode="eval").body
    except SyntaxError:
        return ""
    if isinstance(node, ast.Compare) and isinstance(node.left, ast.Call):
        node = node.left  # "mean([2, 4]) == 3.0": the call is the left side
    if not isinstance(node, ast.Call):
        return ""
    source = call.strip()
    parts = [ast.get_source_segment(source, argument) or "" for argument in node.args]
    parts += [f"{keyword.arg}={ast.get_source_segment(source, keyword.value)}" for keyword in node.keywords
              if keyword.arg is not None]
    return ", ".join(parts)


def cause_is_known(request: FixRequest) -> bool:
    """Whether the cause comes with the diagnostic (our review's finding, the parser's error) rather than from the
    model's guess: generation states a known cause as fact and a guessed one only as a lead."""
    return bool(request.known_cause) or (request.source in SYNTAX_SOURCES and request.code == "syntax")


def _describe(request: FixRequest) -> str:
    label = " ".join(part for part in (request.source, f"[{request.code}]" if request.code else None) if part)
    return f"{label}: {request.message}" if label else request.message
