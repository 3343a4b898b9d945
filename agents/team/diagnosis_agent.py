"""The diagnosis agent: explains the cause of a diagnostic and picks the smallest node an edit may replace.

It watches ``subtask.explain``. A syntax error of our own needs no model (the parser already said what is wrong);
neither does a diagnostic that came with its cause (our review's findings carry one). Anything else — a type error,
a linter's code, a failing test — is one focused question to the model: the cause in a sentence or two and the one
line that must change. That quoted line, found in the text (never by a model's line number), widens the target
when the diagnostic itself points elsewhere.
"""

from __future__ import annotations

import logging

from ..broker.messages import Message, MessageKind
from ..broker.subscription import HandlerContext
from ..edits.anchoring import locate_snippet
from ..llm.client import LlmClient
from ..syntax.code_units import target_node, unit_node_at
from . import prompts
from .payloads import Explanation, FixRequest
from .prompt_context import context_for
from .written_examples import EXAMPLES_SCHEMA, function_name_at, parse_examples

log = logging.getLogger(__name__)

SYNTAX_SOURCES = frozenset({"metagpt-lsp"})


class DiagnosisAgent:
    name = "diagnosis"
    watches = (MessageKind.SUBTASK_EXPLAIN,)
    concurrency = 4

    def __init__(self, llm: LlmClient) -> None:
        self.llm = llm

    async def handle(self, message: Message, context: HandlerContext) -> None:
        context.reply(await self.explain(message.payload_as(FixRequest), context.task_id))

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
        schema = prompts.EXPLAIN_SCHEMA if not examples_of else {
            **prompts.EXPLAIN_SCHEMA, "properties": {"cause": {"type": "string", "maxLength": 400},
                                                     "line": {"type": "string", "maxLength": 200},
                                                     "examples": EXAMPLES_SCHEMA}}
        answer = await self.llm.complete_json(
            prompts.explain(context_for(snapshot, target.start_byte, target.end_byte), target_text,
                            _describe(request), examples_of),
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
        return Explanation(cause, start, end, suspect, examples)


def cause_is_known(request: FixRequest) -> bool:
    """Whether the cause comes with the diagnostic (our review's finding, the parser's error) rather than from the
    model's guess: generation states a known cause as fact and a guessed one only as a lead."""
    return bool(request.known_cause) or (request.source in SYNTAX_SOURCES and request.code == "syntax")


def _describe(request: FixRequest) -> str:
    label = " ".join(part for part in (request.source, f"[{request.code}]" if request.code else None) if part)
    return f"{label}: {request.message}" if label else request.message
