"""The generation agent: writes code — a replacement for a target node, or the code a request asks for.

It watches ``subtask.propose_fix`` (a cause and a target from diagnosis, plus the reasons earlier rounds were
rejected) and ``subtask.generate`` (a stub, a comment or a cursor). It answers with a ``Proposal``: the model's code
taken out of its fenced block and fitted to the document's indentation. It never checks its own work: review does.
"""

from __future__ import annotations

import logging

from ..broker.messages import Message, MessageKind
from ..broker.subscription import HandlerContext
from ..edits.patches import Patch, fit_replacement, without_repeated_context
from ..llm.client import LlmClient
from ..llm.code_blocks import extract_code_block
from ..llm.errors import LlmBadReply
from ..syntax.code_units import unit_node_at
from ..syntax.languages import parser
from ..syntax.positions import decode
from . import prompts
from .diagnosis_agent import cause_is_known
from .payloads import GenerateRequest, Proposal, ProposeFix
from .prompt_context import context_for

log = logging.getLogger(__name__)

CANDIDATES = (("unguided", 0.0), ("suspect", 0.0), ("cause", 0.0), ("unguided", 0.5), ("suspect", 0.5))
"""How candidate fixes differ (``team.fixCandidates``): which lead from diagnosis each is given, and its temperature.
The first is always the unguided whole-unit repair — the function rewritten from the diagnostic alone, what one
direct call would answer — so that diagnosis's leads are added to it, never substituted for it."""


class GenerationAgent:
    name = "generation"
    watches = (MessageKind.SUBTASK_PROPOSE_FIX, MessageKind.SUBTASK_GENERATE)
    concurrency = 4

    def __init__(self, llm: LlmClient) -> None:
        self.llm = llm

    async def handle(self, message: Message, context: HandlerContext) -> None:
        if message.kind is MessageKind.SUBTASK_PROPOSE_FIX:
            context.reply(await self.propose_fix(message.payload_as(ProposeFix), context.task_id))
        else:
            context.reply(await self.generate(message.payload_as(GenerateRequest), context.task_id))

    async def propose_fix(self, subtask: ProposeFix, task_id: str) -> Proposal:
        request, explanation = subtask.request, subtask.explanation
        snapshot = request.snapshot
        start, end = explanation.target_start, explanation.target_end
        style = candidate_style(subtask)
        unit = unit_node_at(snapshot, start, end)
        subject = _whole_unit_subject(snapshot, unit.start_byte, unit.end_byte) if unit is not None else None
        if style == "unguided" and unit is not None and subject is not None:
            start, end = unit.start_byte, unit.end_byte
            diagnostic = request.message if not request.known_cause else f"{request.message} ({request.known_cause})"
            messages = prompts.repair_unit(context_for(snapshot, start, end), subject, diagnostic, subtask.rejections)
        else:
            target = decode(snapshot.source[start:end])
            messages = prompts.propose_fix(context_for(snapshot, start, end),
                                           _dedented_first_line(snapshot, start, target), request.message,
                                           fix_hint(subtask), subtask.rejections,
                                           _whole_unit_subject(snapshot, start, end))
        reply = await self.llm.complete(messages, task_id=task_id, temperature=fix_temperature(subtask))
        if (start, end) != (explanation.target_start, explanation.target_end) and not _defines(
                snapshot, start, end, code_of_reply(reply.text, snapshot.language_name, reply.truncated)):
            start, end = explanation.target_start, explanation.target_end  # it answered the lines, not the unit
        return Proposal(fix_patch(snapshot, start, end, reply.text, reply.truncated),
                        f"round {subtask.round}, {style}")

    async def generate(self, request: GenerateRequest, task_id: str) -> Proposal:
        snapshot = request.snapshot
        start, end = request.start_byte, request.end_byte
        if request.kind == "cursor":
            before = snapshot.source[_char_boundary(snapshot.source, max(0, start - 1500)):start]
            after = snapshot.source[end:_char_boundary(snapshot.source, min(len(snapshot.source), end + 500))]
            target = before + b"<CURSOR>" + after
        else:
            target = snapshot.source[start:end]
        context = context_for(snapshot, start, end)
        reply = await self.llm.complete(
            prompts.generate(context, request.kind, request.instruction, decode(target)),
            task_id=task_id)
        code = code_of_reply(reply.text, snapshot.language_name, reply.truncated)
        if request.kind == "stub":
            new_text = fit_replacement(snapshot, start, end, code)
        elif request.kind == "comment":
            new_text = "\n" + _indent_at(snapshot, start) + fit_replacement(snapshot, start, end, code).rstrip("\r\n")
        else:
            new_text = fit_replacement(snapshot, start, end, code).rstrip("\r\n")
        return Proposal(Patch(snapshot.uri, snapshot.version, start, end, new_text), request.kind)


def code_of_reply(text: str, language: str | None, truncated: bool = False) -> str:
    """The code in a model's reply; LlmBadReply when it was cut off or holds none."""
    if truncated:
        raise LlmBadReply("the model's code was cut off by llm.maxTokens before it ended; raise llm.maxTokens")
    code = extract_code_block(text, language)
    if not code or not code.strip():
        raise LlmBadReply("the model's reply held no code")
    return code


def fix_patch(snapshot, start: int, end: int, reply: str, truncated: bool = False) -> Patch:
    """A fix reply as a patch for the target ``[start, end)``: its code block, only the definition the target names,
    widened to the whole unit when the reply rewrote it, without what it repeats of the text around the target, and
    indented to sit in place. Review decides whether it may be offered."""
    code = code_of_reply(reply, snapshot.language_name, truncated)
    code = _definition_named(snapshot, _unit_name(snapshot, start, end), code)
    start, end = _widen_to_unit_if_rewritten(snapshot, start, end, code)
    code = without_repeated_context(snapshot, start, end, code)
    return Patch(snapshot.uri, snapshot.version, start, end, fit_replacement(snapshot, start, end, code))


def candidate_style(subtask: ProposeFix) -> str:
    """Which kind of candidate this is: "unguided" (the whole unit from the diagnostic alone), "suspect", "cause"
    or "known" (a cause that came with the diagnostic, stated as fact)."""
    return _candidate_plan(subtask)[subtask.candidate - 1][2]


def fix_hint(subtask: ProposeFix) -> str:
    """What diagnosis found, as this candidate is told it. A known cause (our review's, the parser's) is a fact. A
    cause the model guessed is often wrong and, stated as fact, leads a small model astray: the candidates get it
    as a lead instead — the suspect line, nothing, or the guessed cause marked as a guess — so that they differ."""
    return _candidate_plan(subtask)[subtask.candidate - 1][0]


def fix_temperature(subtask: ProposeFix) -> float:
    """The first candidate of the first round is the model's best guess (temperature 0); later rounds sample more
    widely, so that they can differ from what was already tried."""
    return min(1.0, 0.2 * (subtask.round - 1) + _candidate_plan(subtask)[subtask.candidate - 1][1])


def _candidate_plan(subtask: ProposeFix) -> list[tuple[str, float, str]]:
    """(hint, temperature, style) for candidates 1..n: the unguided repair first, then diagnosis's leads at
    temperature 0, then the same sampled warmer; a candidate that would repeat an earlier one's request exactly is
    sampled warmer still. A known cause (the parser's, our review's) is stated as fact to the led candidates."""
    request, explanation = subtask.request, subtask.explanation
    plan: list[tuple[str, float, str]] = []
    for number in range(max(subtask.candidate, 1)):
        style, temperature = CANDIDATES[number % len(CANDIDATES)]
        if style == "unguided":
            hint = ""
        elif cause_is_known(request):
            style, hint, temperature = "known", f"Cause: {explanation.cause}", 0.0
        else:
            hint = _lead(style, explanation)
        while any((hint, temperature, style) == (h, t, s) for h, t, s in plan):
            temperature = round(temperature + 0.3, 2)
        plan.append((hint, temperature, style))
    return plan


def _lead(style: str, explanation) -> str:
    if style == "suspect" and explanation.suspect:
        return f"A colleague suspects this line: `{explanation.suspect.strip()}` (the bug may be elsewhere)."
    if style == "cause" and explanation.cause:
        return f"A first look suggests: {explanation.cause} (this may be wrong)."
    return ""


def _widen_to_unit_if_rewritten(snapshot, start: int, end: int, code: str) -> tuple[int, int]:
    """Models asked to fix one statement often answer with the whole function: then the patch covers the function
    (review still requires the actual change to stay inside the target)."""
    unit = unit_node_at(snapshot, start, end)
    if unit is None or (unit.start_byte, unit.end_byte) == (start, end):
        return start, end
    first_code_line = next((line.strip() for line in code.splitlines() if line.strip()), "")
    unit_first_line = snapshot.source[unit.start_byte:unit.end_byte].split(b"\n", 1)[0].decode(
        "utf-8", "replace").strip()
    if first_code_line and first_code_line.split("(")[0] == unit_first_line.split("(")[0]:
        return unit.start_byte, unit.end_byte
    return start, end


def _whole_unit(snapshot, start: int, end: int):
    """The function or class node that is exactly the target, None when the target is smaller or elsewhere."""
    unit = unit_node_at(snapshot, start, end)
    if unit is None or (unit.start_byte, unit.end_byte) != (start, end):
        return None
    return unit.child_by_field_name("definition") if unit.type == "decorated_definition" else unit


def _name_text(node, source: bytes) -> str | None:
    name = node.child_by_field_name("name") if node is not None else None
    return source[name.start_byte:name.end_byte].decode("utf-8", "replace") if name is not None else None


def _unit_name(snapshot, start: int, end: int) -> str | None:
    return _name_text(_whole_unit(snapshot, start, end), snapshot.source)


def _whole_unit_subject(snapshot, start: int, end: int) -> str | None:
    """``the function `name``` when the target is a whole function or class (its context shows it already)."""
    definition = _whole_unit(snapshot, start, end)
    name = _name_text(definition, snapshot.source)
    if name is None:
        return None
    return f"the {'class' if 'class' in definition.type else 'function'} `{name}`"


def _definition_named(snapshot, name: str | None, code: str) -> str:
    """Only the definition called ``name`` when the reply holds more: asked for one function, models often answer
    with the file around it (its imports, its docstring, a usage example), which must not replace the function."""
    if name is None or snapshot.language is None:
        return code
    data = code.encode("utf-8", "surrogatepass")
    stack = [parser(snapshot.language).parse(data).root_node]
    while stack:
        node = stack.pop(0)
        if node.type in snapshot.language.unit_types and _name_text(node, data) == name:
            whole = node.parent if node.parent is not None and node.parent.type == "decorated_definition" else node
            line_start = data.rfind(b"\n", 0, whole.start_byte) + 1
            return data[line_start:whole.end_byte].decode("utf-8", "surrogatepass")
        stack.extend(node.named_children)
    return code


def _defines(snapshot, start: int, end: int, code: str) -> bool:
    """Whether ``code`` holds the definition of the unit ``[start, end)`` (a model asked for the whole function
    sometimes answers only the lines it changed: those replace the target, not the function)."""
    name = _unit_name(snapshot, start, end)
    return name is not None and _definition_named(snapshot, name, code) != code or any(
        line.lstrip().startswith((f"def {name}(", f"async def {name}(", f"class {name}"))
        for line in code.splitlines())


def _char_boundary(source: bytes, offset: int) -> int:
    """``offset`` moved back to the start of the UTF-8 character it falls in (a window cut by bytes must not split
    one: the prompt would not decode)."""
    while 0 < offset < len(source) and 0x80 <= source[offset] < 0xC0:
        offset -= 1
    return offset


def _indent_at(snapshot, offset: int) -> str:
    line_start = snapshot.lines.line_start(snapshot.lines.line_of(offset))
    line = snapshot.source[line_start:offset].decode("utf-8", "replace")
    return line[: len(line) - len(line.lstrip(" \t"))]


def _dedented_first_line(snapshot, start: int, target: str) -> str:
    """The target as the model should see it: its first line indented like the rest (it starts mid-line)."""
    return _indent_at(snapshot, start) + target
