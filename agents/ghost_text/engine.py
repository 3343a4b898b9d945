"""Ghost text: one offer at the cursor, from the cache when it can be, else from one fill-in-the-middle request.

The steps, each in its own module: the window and signatures the model sees (:mod:`context`), the family's FIM
template (:mod:`fim_templates`), whether to ask and how much to keep (:mod:`offer_rules`), the syntax check
(:mod:`syntax_guard`) and the cache with type-through (:mod:`offer_cache`). The request is a streamed raw
completion that goes ahead of queued review work; it is closed as soon as the offer is complete (the end of its
line, or a dedent below the cursor's block), and cancelling the caller's task aborts it. An endpoint that answers
HTTP 404 on ``/completions`` (a chat-only hosted model) is asked through chat for the middle only, from then on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from ..llm import LlmClient, LlmError, extract_code_block
from ..syntax import DocumentSnapshot
from .context import CursorContext, WindowOptions, cursor_context
from .fim_templates import FimTemplate, template_for
from .offer_cache import CursorKey, OfferCache
from .offer_rules import Offer, Shape, discard_reason, finished, over_closers, shape_at, should_request, trim
from .syntax_guard import adds_syntax_errors

log = logging.getLogger(__name__)

HOLE = "<FILL_HERE>"
CHAT_SYSTEM = (f"You fill in the hole marked {HOLE} in the user's code. Reply with only the code that goes in the "
               "hole: no explanation, no code fences, nothing that already stands before or after the hole.")


@dataclass(frozen=True)
class GhostTextOptions:
    """What the user can set (``inline.*``) that the pipeline needs."""

    window: WindowOptions = field(default_factory=WindowOptions)
    fim_template: str = "auto"
    max_tokens: int = 128
    single_line_max_tokens: int = 48
    cache_entries: int = 250


@dataclass(frozen=True)
class GhostRequest:
    """A cursor in a snapshot; ``explicit`` when the user asked (no text-right-of-cursor rule then)."""

    snapshot: DocumentSnapshot
    cursor: int
    open_documents: tuple[DocumentSnapshot, ...] = ()
    explicit: bool = False


@dataclass(frozen=True)
class GhostResult:
    """The offer (None: nothing to show), why not when there is none, and whether a model was asked."""

    offer: Offer | None
    reason: str = ""
    model_called: bool = False


class GhostText:
    """Ghost text for one LLM endpoint: its cache and what was learned about the endpoint live here."""

    def __init__(self, llm: LlmClient, options: GhostTextOptions | None = None) -> None:
        self.llm = llm
        self.options = options or GhostTextOptions()
        self.cache = OfferCache(self.options.cache_entries)
        self.chat_only = False
        self.model_calls = 0

    def configure(self, options: GhostTextOptions) -> None:
        self.options = options

    @property
    def template(self) -> FimTemplate:
        return template_for(self.llm.endpoint.model, self.options.fim_template)

    def cached(self, request: GhostRequest) -> GhostResult | None:
        """The answer without a model call (an offer remembered or typed through), or None."""
        offer = self.cache.lookup(request.snapshot.source, request.cursor)
        if offer is None:
            return None
        return GhostResult(offer if offer.text else None, "" if offer.text else "nothing to show here (remembered)")

    async def offer(self, request: GhostRequest) -> GhostResult:
        """The offer at the cursor: cached, else asked of the model, trimmed, filtered and checked."""
        if (hit := self.cached(request)) is not None:
            return hit
        context = cursor_context(request.snapshot, request.cursor, self.options.window, request.open_documents)
        if not should_request(context.line_after, request.explicit):
            return GhostResult(None, "text stands right of the cursor")
        shape = shape_at(context.line_before, context.line_after)
        raw = await self._ask(context, shape)
        result = self._shaped(request, context, shape, raw)
        self.cache.put(CursorKey.at(request.snapshot.source, request.cursor), result.offer or Offer(""))
        return result

    def _shaped(self, request: GhostRequest, context: CursorContext, shape: Shape, raw: str) -> GhostResult:
        text = trim(raw, shape, context.line_before, context.suffix)
        if context.line_before.strip() and context.line_before.endswith(" ") and text.startswith(" "):
            text = text[1:]  # small models often add one space after the one already typed
        reason = discard_reason(text, context.line_before, context.line_after, context.prefix, context.suffix)
        if reason is not None:
            return GhostResult(None, reason, True)
        offer = over_closers(text, context.line_after)
        replaced = len(context.line_after[:offer.replace_chars].encode("utf-8", "surrogatepass"))
        if adds_syntax_errors(request.snapshot, request.cursor, offer.text, replaced):
            return GhostResult(None, "adds syntax errors", True)
        return GhostResult(offer, "", True)

    async def _ask(self, context: CursorContext, shape: Shape) -> str:
        self.model_calls += 1
        max_tokens = self.options.max_tokens if shape.multi_line else self.options.single_line_max_tokens
        if not self.chat_only:
            try:
                return await self._fim(context, shape, max_tokens)
            except LlmError as error:
                if error.status != 404:
                    raise
                self.chat_only = True
                log.info("%s has no /completions (HTTP 404): ghost text asks through chat from now on",
                         self.llm.base_url)
        return await self._chat(context, max_tokens)

    async def _fim(self, context: CursorContext, shape: Shape, max_tokens: int) -> str:
        template = self.template
        prompt = template.prompt(context.prefix, context.suffix, path=context.path, files=context.files)
        stop = (["\n"] if not shape.multi_line else []) + list(template.stop)
        raw = ""
        stream = self.llm.stream_completion(prompt, max_tokens=max_tokens, stop=stop)
        try:
            async for delta in stream:
                raw += delta
                if finished(raw, shape, context.suffix):
                    break  # the rest would be cut off: stop paying for it
        finally:
            await stream.aclose()  # type: ignore[attr-defined]
        return raw

    async def _chat(self, context: CursorContext, max_tokens: int) -> str:
        shown = "".join(f"{file.path}:\n{file.text}\n\n" for file in context.files)
        messages = [{"role": "system", "content": CHAT_SYSTEM},
                    {"role": "user", "content": f"{shown}{context.path}:\n{context.prefix}{HOLE}{context.suffix}"}]
        reply = "".join([delta async for delta in self.llm.stream(messages, max_tokens=max_tokens, temperature=0)])
        return extract_code_block(reply) if "```" in reply else reply
