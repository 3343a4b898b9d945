"""The team's one way to ask an LLM: any OpenAI-compatible endpoint through ``openai.AsyncOpenAI``.

What the agents get from it: a reply (``complete``), a stream of text deltas (``stream``) and a JSON value
(``complete_json``), each with the user's ``max_tokens`` cap, temperature and — for endpoints that take it (not
OpenAI's) — a repeat penalty that keeps small local models from looping. Retries are ours, not the ``openai``
client's, so they are logged and cancellable: rate limits (Retry-After honoured), server errors and dropped
connections are retried with exponential backoff and jitter. Cancelling the calling task aborts the HTTP request.
Identical requests are answered from a cache (and concurrent twins share one call), usage is counted per task,
and the API key is never logged. Errors are the :mod:`llm_errors` family, worded for the user, and nothing an
endpoint says reaches a log line or a message unredacted (an endpoint may echo the key). Every prompt can be sent:
a lone surrogate in the document (an editor may send one) goes to the model as U+FFFD, the document keeps it.

The endpoint's quirks are learned once and remembered: which structured-output mode works (see
:mod:`structured_output`; only an answer that names the refused ``response_format`` changes it, never a passing
failure) and which optional parameters it refuses with HTTP 400. The embedded model's base URL comes from
``base_url_provider`` on first need, so merely building a client starts nothing; ``openai`` itself is imported only
when the first request is made.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlparse

from .errors import (
    LlmBadReply,
    LlmError,
    LlmRejected,
    LlmUnavailable,
    endpoint_text,
    error_from_openai,
    is_retryable,
    redacted,
    retry_after_s,
    server_text_of,
    status_of,
)
from .priority_slots import PrioritySlots
from .reply_cache import ReplyCache, request_key
from .settings import LlmEndpoint, LlmSettings, resolve_endpoint
from .structured_output import (
    MODES,
    missing_required,
    parse_json_reply,
    refuses_structured_output,
    response_format_for,
    with_schema_instruction,
)
from .usage import TokenUsage, UsageLedger, estimate_tokens

log = logging.getLogger(__name__)

Messages = list[dict[str, Any]]
BaseUrlProvider = Callable[[], "str | Awaitable[str]"]
OPTIONAL_PARAMS = ("repeat_penalty", "stream_options")  # dropped (and remembered) when an endpoint refuses them
MAX_RETRY_AFTER_S = 60.0


@dataclass(frozen=True)
class LlmReply:
    """A complete reply: its text, why it stopped (``"length"`` means cut by max_tokens) and what it cost."""

    text: str
    finish_reason: str | None
    usage: TokenUsage
    cached: bool = False

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"


class LlmClient:
    """One endpoint, one model: see the module docstring for what it does on the agents' behalf."""

    def __init__(self, settings: LlmSettings, endpoint: LlmEndpoint | None = None, *,
                 base_url_provider: BaseUrlProvider | None = None, environ: Mapping[str, str] | None = None,
                 backoff_base_s: float = 0.5, backoff_max_s: float = 8.0, cache_entries: int = 256) -> None:
        self.settings = settings
        self.endpoint = endpoint or resolve_endpoint(settings, environ)
        self._base_url_provider = base_url_provider
        self._base_url = self.endpoint.base_url
        self._client: Any = None
        self._client_lock = asyncio.Lock()
        # the embedded server answers one request at a time: one slot here, so urgent requests can jump the queue
        self._slots = PrioritySlots(1 if self.endpoint.embedded else settings.max_concurrent_requests)
        self._cache: ReplyCache[LlmReply] = ReplyCache(cache_entries)
        self._ledger = UsageLedger()
        self._backoff = (backoff_base_s, backoff_max_s)
        self.refused_params: set[str] = set()
        self.structured_mode: str | None = None  # the mode known to work, once one has
        self.failed_modes: set[str] = set()

    @property
    def base_url(self) -> str:
        return self._base_url or "(embedded model, not started)"

    def usage_for(self, task_id: str) -> TokenUsage:
        return self._ledger.usage_for(task_id)

    @property
    def total_usage(self) -> TokenUsage:
        return self._ledger.total

    def forget_replies(self) -> int:
        """Forget the remembered replies, so the next identical request asks the endpoint again."""
        return self._cache.clear()

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()

    # -- asking ----------------------------------------------------------------------------------------------------
    async def complete(self, messages: Messages, *, task_id: str | None = None, max_tokens: int | None = None,
                       temperature: float | None = None, stop: list[str] | None = None) -> LlmReply:
        """The whole reply to ``messages``; identical requests are answered from the cache."""
        return await self._cached(self._params(messages, max_tokens, temperature, stop), task_id)

    async def stream(self, messages: Messages, *, task_id: str | None = None, max_tokens: int | None = None,
                     temperature: float | None = None, stop: list[str] | None = None) -> AsyncIterator[str]:
        """Text deltas as they arrive. A stream that ends before the endpoint says it is finished raises
        LlmBadReply at the end, so partial text is never taken for a complete reply."""
        params = self._params(messages, max_tokens, temperature, stop)
        key = self._key(params)
        if (cached := self._cache.get(key)) is not None:
            self._ledger.cache_hit(task_id)
            if cached.text:
                yield cached.text
            return
        parts: list[str] = []
        finish, usage = None, None
        async with self._slots:
            stream = await self._send({**params, "stream_options": {"include_usage": True}}, stream=True)
            import openai  # already imported by _send
            try:
                async for chunk in stream:
                    usage = getattr(chunk, "usage", None) or usage
                    for choice in chunk.choices or []:
                        if choice.delta is not None and choice.delta.content:
                            parts.append(choice.delta.content)
                            yield choice.delta.content
                        finish = choice.finish_reason or finish
            except (openai.APIError, ValueError) as exc:  # a broken connection or chunk: the partial reply is worthless
                raise self._error(exc, attempts=1) from None  # the endpoint's own words stay out of tracebacks
            finally:
                await stream.close()
        text = "".join(parts)
        if finish is None:
            raise LlmBadReply(
                f"The LLM endpoint {self.base_url} ended its stream before the reply was complete ({len(text)} "
                "characters received); the partial reply was discarded. Check the server's log.")
        reply = LlmReply(text, finish, self._usage(usage, params, text))
        self._ledger.charge(task_id, reply.usage)
        self._cache.put(key, reply)

    async def stream_completion(self, prompt: str, *, max_tokens: int, stop: list[str] | None = None,
                                temperature: float = 0.0, task_id: str | None = None) -> AsyncIterator[str]:
        """Text deltas of a raw-prompt completion (``/v1/completions``, streamed, no cache, no retry): the way
        fill-in-the-middle prompts are sent, special tokens as written. It goes ahead of queued chat requests;
        closing the iterator (or cancelling its task) aborts the HTTP stream, which llama.cpp's server notices.
        An endpoint without ``/completions`` raises an LlmError whose ``status`` is 404."""
        body: dict[str, Any] = {"max_tokens": max_tokens, "temperature": temperature}
        if stop:
            body["stop"] = list(stop)[:4] if self._is_openai() else list(stop)  # OpenAI takes at most 4
        parts: list[str] = []
        async with self._slots.urgent():
            client = await self._openai_client()
            import openai  # already imported by _openai_client
            try:
                stream = await client.completions.create(model=self.endpoint.model, prompt=_sendable_text(prompt),
                                                         stream=True, extra_body=body)
            except (openai.APIError, ValueError) as exc:
                raise self._error(exc, attempts=1) from None
            try:
                async for chunk in stream:
                    for choice in chunk.choices or []:
                        if choice.text:
                            parts.append(choice.text)
                            yield choice.text
            except (openai.APIError, ValueError) as exc:
                raise self._error(exc, attempts=1) from None
            finally:
                await stream.close()
                text = "".join(parts)
                self._ledger.charge(task_id, TokenUsage(estimate_tokens(prompt), estimate_tokens(text), requests=1,
                                                        estimated=True))

    async def complete_json(self, messages: Messages, schema: dict, *, task_id: str | None = None,
                            max_tokens: int | None = None, name: str = "reply") -> Any:
        """A JSON value that has the schema's required top-level keys, asked for in the best mode the endpoint has.

        Until a mode has worked, an answer that says the endpoint does not take that ``response_format`` (see
        :func:`refuses_structured_output`) moves on to the next mode at once and for good, and says so once in the
        log. Anything else — a passing failure (HTTP 5xx or 429 that names nothing, a dropped connection) retried
        as any request is, a timeout — fails this call only: the mode is asked again next time. The first mode
        that yields JSON is remembered and used from then on.
        """
        modes = [self.structured_mode] if self.structured_mode else [m for m in MODES if m not in self.failed_modes]
        for index, mode in enumerate(modes):
            probing = self.structured_mode is None and mode != "text"
            asked = messages if mode == "json_schema" else with_schema_instruction(messages, schema)
            params = self._params(asked, max_tokens, None, None, response_format_for(mode, schema, name))
            try:
                reply = await self._cached(params, task_id, refusal=_refuses_structured_output if probing else None)
            except LlmError as exc:
                if not probing or not refuses_structured_output(exc.status, exc.server_text):
                    raise
                self._refused_mode(mode, modes[index + 1] if index + 1 < len(modes) else None, exc)
                continue
            try:
                value = parse_json_reply(reply.text)
            except ValueError as exc:
                self._cache.forget(self._key(params))  # garbage is not worth remembering: ask again next time
                reason = redacted(str(exc), (self.endpoint.api_key,))
                raise LlmBadReply(f"The LLM's reply was not JSON: {reason}. Try a larger llm.maxTokens or a stronger "
                                  "llm.model.") from None
            if missing := missing_required(value, schema):
                self._cache.forget(self._key(params))
                raise LlmBadReply(f"The LLM's JSON reply lacks {', '.join(missing)}; try a stronger llm.model.")
            self.structured_mode = mode
            return value
        raise LlmBadReply(f"The LLM endpoint {self.base_url} refused every way of asking for JSON.")

    def _refused_mode(self, mode: str, next_mode: str | None, error: LlmError) -> None:
        """The endpoint said it does not take ``mode``: never ask that way again, and say so once."""
        if mode in self.failed_modes:
            return
        self.failed_modes.add(mode)
        log.info("LLM endpoint %s does not take structured output as %s (HTTP %s: %s); asking for JSON as %s from "
                 "now on", self.base_url, mode, error.status, endpoint_text(error.server_text, limit=120),
                 next_mode or "nothing")

    # -- plumbing --------------------------------------------------------------------------------------------------
    def _params(self, messages: Messages, max_tokens: int | None, temperature: float | None,
                stop: list[str] | None, response_format: dict | None = None) -> dict:
        """The request body as it goes on the wire (and into the cache key)."""
        cap = self.settings.max_tokens
        params: dict[str, Any] = {
            "model": self.endpoint.model, "messages": [_sendable(m) for m in messages],
            "max_tokens": min(max_tokens, cap) if max_tokens else cap,
            "temperature": self.settings.temperature if temperature is None else temperature,
        }
        if stop:
            params["stop"] = list(stop)
        if response_format is not None:
            params["response_format"] = response_format
        if self.settings.repeat_penalty and not self._is_openai():
            params["repeat_penalty"] = self.settings.repeat_penalty
        return params

    def _is_openai(self) -> bool:
        host = urlparse(self._base_url or "").hostname or ""
        return host == "openai.com" or host.endswith(".openai.com")

    def _key(self, params: dict) -> str:
        return request_key(endpoint=self.endpoint.base_url or "embedded", params=params)

    async def _cached(self, params: dict, task_id: str | None,
                      refusal: Callable[[Exception], bool] | None = None) -> LlmReply:
        async def call() -> LlmReply:
            async with self._slots:
                completion = await self._send(params, stream=False, refusal=refusal)
            reply = self._reply_from(completion, params)
            self._ledger.charge(task_id, reply.usage)
            return reply

        reply, free = await self._cache.get_or_call(self._key(params), call)
        if free:
            self._ledger.cache_hit(task_id)
            return replace(reply, cached=True)
        return reply

    async def _send(self, params: dict, *, stream: bool, refusal: Callable[[Exception], bool] | None = None) -> Any:
        """One request with our retry loop; returns the openai ChatCompletion or AsyncStream. An error for which
        ``refusal`` is true is final: it is raised at once, not retried."""
        attempts = 1 + self.settings.max_retries
        attempt = 0
        while True:
            attempt += 1
            body = {k: v for k, v in params.items() if k not in self.refused_params}
            client = await self._openai_client()
            import openai  # already imported by _openai_client
            log.debug("LLM request %d/%d to %s: model=%s messages=%d max_tokens=%s stream=%s", attempt, attempts,
                      self.base_url, body["model"], len(body["messages"]), body.get("max_tokens"), stream)
            try:
                extra = {k: v for k, v in body.items() if k not in ("model", "messages")}
                return await client.chat.completions.create(model=body["model"], messages=body["messages"],
                                                            stream=stream, extra_body=extra)
            except (openai.APIError, ValueError) as exc:  # ValueError: a body that is not JSON; cancellation passes
                if self._learn_refused_param(exc, body):
                    attempt -= 1
                    continue
                if not is_retryable(exc) or attempt >= attempts or (refusal is not None and refusal(exc)):
                    raise self._error(exc, attempt) from None  # the endpoint's own words stay out of tracebacks
                delay = self._delay(attempt, exc)
                log.warning("LLM endpoint %s: %s; retry %d of %d in %.2f s", self.base_url, type(exc).__name__,
                            attempt, attempts - 1, delay)
                await asyncio.sleep(delay)

    def _learn_refused_param(self, exc: Exception, body: dict) -> bool:
        """An HTTP 400 naming an optional parameter we sent: drop it for this endpoint from now on."""
        if status_of(exc) not in (400, 422):
            return False
        text = f"{getattr(exc, 'body', '')} {exc}"
        refused = [p for p in OPTIONAL_PARAMS if p in body and p in text]
        for param in refused:
            log.info("LLM endpoint %s does not take %r; not sending it again", self.base_url, param)
            self.refused_params.add(param)
        return bool(refused)

    def _delay(self, attempt: int, exc: Exception) -> float:
        server_says = retry_after_s(exc)
        if server_says is not None:
            return min(max(server_says, 0.0), MAX_RETRY_AFTER_S)
        base, cap = self._backoff
        ceiling = min(cap, base * 2 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def _error(self, exc: Exception, attempts: int) -> LlmError:
        return error_from_openai(exc, self.base_url, self.endpoint.model, attempts, self.settings.request_timeout_s,
                                 secret=self.endpoint.api_key)

    def _reply_from(self, completion: Any, params: dict) -> LlmReply:
        choices = getattr(completion, "choices", None)
        first = choices[0] if choices else None
        message = getattr(first, "message", None)
        if first is None or message is None:
            said = endpoint_text(completion, (self.endpoint.api_key,), limit=80)
            raise LlmBadReply(f"The LLM endpoint {self.base_url} answered without a message ({said!r}); is "
                              "llm.baseUrl pointing at an OpenAI-compatible API?")
        text = message.content or ""
        return LlmReply(text, first.finish_reason, self._usage(getattr(completion, "usage", None), params, text))

    @staticmethod
    def _usage(reported: Any, params: dict, text: str) -> TokenUsage:
        if reported is not None and getattr(reported, "prompt_tokens", None) is not None:
            return TokenUsage(reported.prompt_tokens, reported.completion_tokens or 0, requests=1)
        prompt = sum(estimate_tokens(str(m.get("content") or "")) for m in params["messages"])
        return TokenUsage(prompt, estimate_tokens(text), requests=1, estimated=True)

    async def _openai_client(self) -> Any:
        async with self._client_lock:
            if self._client is None:
                base_url = await self._resolve_base_url()
                if self._is_openai() and not self.endpoint.api_key:
                    raise LlmRejected(f"No API key for {base_url}: set the environment variable named by "
                                      f"llm.apiKeyEnv ({self.settings.api_key_env}) and restart the editor.")
                import openai  # here, not at module level: starting the language server must not import openai

                timeout = openai.Timeout(self.settings.request_timeout_s, connect=self.settings.connect_timeout_s)
                # an endpoint without a key (llama.cpp, Ollama) still gets a placeholder: the openai client needs one
                self._client = openai.AsyncOpenAI(base_url=base_url, api_key=self.endpoint.api_key or "no-key",
                                                  max_retries=0, timeout=timeout)
            return self._client

    async def _resolve_base_url(self) -> str:
        if self._base_url is None:
            if self._base_url_provider is None:
                raise LlmUnavailable("No LLM endpoint is configured and the embedded model is not available: set "
                                     "llm.baseUrl or OPENAI_BASE_URL to an OpenAI-compatible server.")
            try:
                provided = self._base_url_provider()
                if inspect.isawaitable(provided):
                    provided = await provided
            except LlmError:
                raise
            except Exception as exc:
                raise LlmUnavailable(f"The embedded model could not be started ({exc}); set llm.baseUrl or "
                                     "OPENAI_BASE_URL to use another OpenAI-compatible server.") from exc
            self._base_url = str(provided).rstrip("/")
        return self._base_url


def _refuses_structured_output(exc: Exception) -> bool:
    return refuses_structured_output(status_of(exc), server_text_of(exc))


def _sendable(message: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``message`` whose text can be encoded as UTF-8: a lone surrogate (which an editor may send and the
    document keeps) becomes U+FFFD in what the model is sent; a surrogate pair becomes its character."""
    copied = dict(message)
    content = copied.get("content")
    if isinstance(content, str):
        copied["content"] = _sendable_text(content)
    elif isinstance(content, list):
        copied["content"] = [{**part, "text": _sendable_text(part["text"])}
                             if isinstance(part, dict) and isinstance(part.get("text"), str) else part
                             for part in content]
    return copied


def _sendable_text(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD (unchanged, and not copied, when it has none)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text
