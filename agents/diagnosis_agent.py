"""The diagnosis agent: explains the cause of a diagnostic and picks the smallest node an edit may replace.

It watches ``subtask.explain``. A syntax error of our own needs no model (the parser already said what is wrong);
neither does a diagnostic that came with its cause (our review's findings carry one). Anything else — a type error,
a linter's code, a failing test — is one focused question to the model: the cause in a sentence or two and the one
line that must change. That quoted line, found in the text (never by a model's line number), widens the target
when the diagnostic itself points elsewhere. With the opt-in ``team.runDoctests``, the function's own ``>>>``
examples are run on the code as it is first: a failing one (what it gave, what it should give) is the best
evidence a small model can get, so it goes into the question and on to generation as a fact.
"""

from __future__ import annotations

import logging

from . import prompts
from .anchoring import locate_snippet
from .code_units import innermost_unit, target_node, unit_node_at
from .doctest_check import DEFAULT_TIMEOUT_S, module_path_of, run_examples
from .llm_client import LlmClient
from .messages import Message, MessageKind
from .prompt_context import context_for
from .subscription import HandlerContext
from .team_payloads import Explanation, FixRequest

log = logging.getLogger(__name__)

SYNTAX_SOURCES = frozenset({"metagpt-lsp"})


class DiagnosisAgent:
    name = "diagnosis"
    watches = (MessageKind.SUBTASK_EXPLAIN,)
    concurrency = 4

    def __init__(self, llm: LlmClient, run_examples: bool = False, examples_timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.llm = llm
        self.run_examples = run_examples
        self.examples_timeout_s = examples_timeout_s

    async def handle(self, message: Message, context: HandlerContext) -> None:
        request: FixRequest = message.payload
        context.reply(await self.explain(request, context.task_id))

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
        evidence = await self._failing_example(request) if self.run_examples else ""
        answer = await self.llm.complete_json(
            prompts.explain(context_for(snapshot, target.start_byte, target.end_byte), target_text,
                            with_evidence(_describe(request), evidence)),
            prompts.EXPLAIN_SCHEMA, task_id=task_id, max_tokens=200)
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
        return Explanation(cause, start, end, suspect, evidence)

    async def _failing_example(self, request: FixRequest) -> str:
        """The first of the function's own examples that fails on the code as it is, worded; "" when they pass,
        there are none, or they cannot run here."""
        snapshot = request.snapshot
        unit = innermost_unit(snapshot, request.start_byte, request.end_byte)
        if unit is None:
            return ""
        run = await run_examples(snapshot.source.decode("utf-8", "surrogatepass"), unit.name,
                                 module_path_of(snapshot.uri), self.examples_timeout_s)
        return f"{unit.name}: {run.summary}" if run.failed else ""


def with_evidence(diagnostic: str, evidence: str) -> str:
    """The diagnostic's message, followed by what running the function's own examples showed, if anything."""
    return f"{diagnostic}\nRunning its own examples on this code: {evidence}" if evidence else diagnostic


def cause_is_known(request: FixRequest) -> bool:
    """Whether the cause comes with the diagnostic (our review's finding, the parser's error) rather than from the
    model's guess: generation states a known cause as fact and a guessed one only as a lead."""
    return bool(request.known_cause) or (request.source in SYNTAX_SOURCES and request.code == "syntax")


def _describe(request: FixRequest) -> str:
    label = " ".join(part for part in (request.source, f"[{request.code}]" if request.code else None) if part)
    return f"{label}: {request.message}" if label else request.message
