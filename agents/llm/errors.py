"""What can go wrong when the team asks its LLM, each error worded for the user: what happened and what to do.

``str(error)`` is meant to be shown as is (showMessage, a CLI line). The mapping from the ``openai`` client's
exceptions lives here so the client's retry loop stays readable; the ``openai`` module is only touched through the
exception passed in, so importing this module costs nothing.

What an endpoint says about an error is relayed to the user, but never verbatim: :func:`endpoint_text` takes out
the configured API key and anything that looks like a key or a bearer token (an endpoint may echo the request's
headers), then shortens it. Every message built here passes through it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504, 520, 522, 524, 529})
MAX_ENDPOINT_TEXT = 200
REDACTED = "[redacted]"
_MIN_SECRET_CHARS = 6  # a shorter "key" is a placeholder, and replacing it everywhere would garble the text
_KEY_LIKE = re.compile(r"\b(bearer)(\s+)[A-Za-z0-9._~+/=*-]{6,}|"
                       r"\b(sk|pk|rk)-[A-Za-z0-9_*-]{6,}|"
                       r"\b(api[_-]?key|authorization|x-api-key)([\"']?\s*[:=]\s*[\"']?)(?!bearer\s)[^\s\"',}]{6,}",
                       re.IGNORECASE)


class LlmError(Exception):
    """The LLM gave no usable answer; the message says why and what to change.

    ``status`` is the HTTP status when the endpoint answered with one (the structured-output probe reads it).
    """

    status: int | None = None
    server_text: str = ""
    """What the endpoint said (redacted and shortened), for telling one kind of refusal from another."""


class LlmUnavailable(LlmError):
    """No endpoint, or it cannot be reached (connection refused, DNS, reset)."""


class LlmRateLimited(LlmError):
    """The endpoint kept answering HTTP 429 after every retry."""


class LlmTimeout(LlmError):
    """The endpoint did not answer within the configured time."""


class LlmBadReply(LlmError):
    """The endpoint answered, but not with something usable (broken JSON, a stream cut short, no JSON object)."""


class LlmRejected(LlmError):
    """The endpoint refused the request itself (bad key, unknown model, invalid parameters): retrying will not help."""


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of an ``openai.APIStatusError``, None for anything else."""
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def is_retryable(exc: BaseException) -> bool:
    """Rate limits, server errors and dropped connections are worth another try; timeouts and refusals are not."""
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return False
    if isinstance(exc, openai.APIConnectionError):
        return True
    return status_of(exc) in RETRYABLE_STATUS


def retry_after_s(exc: BaseException) -> float | None:
    """The server's Retry-After (seconds, or the ``retry-after-ms`` header), if it sent one."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    try:
        if headers.get("retry-after-ms"):
            return float(headers["retry-after-ms"]) / 1000
        if headers.get("retry-after"):
            return float(headers["retry-after"])
    except ValueError:  # an HTTP date: rare enough to fall back to our own backoff
        return None
    return None


def redacted(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` without the given secrets and without anything that looks like an API key or a bearer token."""
    for secret in secrets:
        if secret and len(secret) >= _MIN_SECRET_CHARS:
            text = text.replace(secret, REDACTED)
    return _KEY_LIKE.sub(_redact_match, text)


def _redact_match(match: re.Match[str]) -> str:
    if match.group(1):  # "Bearer <token>": keep the word, so the reader knows what was there
        return f"{match.group(1)}{match.group(2)}{REDACTED}"
    if match.group(4):
        return f"{match.group(4)}{match.group(5)}{REDACTED}"
    return REDACTED


def endpoint_text(text: object, secrets: Iterable[str | None] = (), limit: int = MAX_ENDPOINT_TEXT) -> str:
    """Text that came from an endpoint, fit to show: secrets taken out first (a cut must not leave half a key
    behind), then shortened to ``limit`` characters on one line."""
    clean = " ".join(redacted(str(text), secrets).split())
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


def server_message(exc: BaseException, limit: int = MAX_ENDPOINT_TEXT, secrets: Iterable[str | None] = ()) -> str:
    """The error text the server put in its body, redacted and shortened for a message line."""
    body = getattr(exc, "body", None)
    message = body.get("message") if isinstance(body, dict) else None
    return endpoint_text(message or getattr(exc, "message", "") or exc, secrets, limit)


def server_text_of(exc: BaseException) -> str:
    """Everything the endpoint said about an error (its JSON body and the status line), unredacted: for matching
    only, never to be shown or logged as it is."""
    return f"{getattr(exc, 'body', None) or ''} {exc}"


def error_from_openai(exc: BaseException, base_url: str, model: str, attempts: int, timeout_s: float,
                      secret: str | None = None) -> LlmError:
    """Translate an ``openai`` (or JSON decoding) exception into one of ours, with a message that says what to do
    and holds nothing the endpoint echoed of ``secret`` (the API key) or of any other key."""
    secrets = (secret,)
    error = _translated(exc, base_url, model, attempts, timeout_s, secrets)
    error.args = (redacted(str(error), secrets),)
    error.status = status_of(exc)
    error.server_text = endpoint_text(server_text_of(exc), secrets, limit=1000)
    return error


def _translated(exc: BaseException, base_url: str, model: str, attempts: int, timeout_s: float,
                secrets: tuple[str | None, ...]) -> LlmError:
    import openai

    def said() -> str:
        return server_message(exc, secrets=secrets)

    tries = f" after {attempts} attempt{'s' if attempts != 1 else ''}"
    if isinstance(exc, openai.APITimeoutError):
        return LlmTimeout(
            f"The LLM endpoint {base_url} did not answer within {timeout_s:g} s: a local model may need a larger "
            "llm.requestTimeoutS or a smaller request; a remote one may be overloaded.")
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        detail = f" ({type(cause).__name__}: {endpoint_text(cause, secrets)})" if cause else ""
        if cause is not None and type(cause).__name__ != "ConnectError" and not isinstance(cause, OSError):
            return LlmBadReply(
                f"The LLM endpoint {base_url} broke the connection before its reply was complete{tries}{detail}; "
                "the partial reply was discarded. Check the server's log.")
        return LlmUnavailable(
            f"The LLM endpoint {base_url} refused the connection or could not be reached{tries}{detail}: is the "
            "server running? Set llm.baseUrl or OPENAI_BASE_URL to a running OpenAI-compatible server.")
    status = status_of(exc)
    if status == 429:
        return LlmRateLimited(
            f"The LLM endpoint {base_url} is rate limiting requests (HTTP 429){tries}: wait a minute, lower "
            f"llm.maxConcurrentRequests, or check the account's quota. Server said: {said()}")
    if status in (401, 403):
        return LlmRejected(
            f"The LLM endpoint {base_url} rejected the API key (HTTP {status}): put a valid key in the environment "
            "variable named by llm.apiKeyEnv (OPENAI_API_KEY by default) and restart the editor.")
    if status == 404:
        return LlmRejected(
            f"The LLM endpoint {base_url} does not know the model {model!r} or the path (HTTP 404): check llm.model "
            f"and llm.baseUrl (it usually ends in /v1). Server said: {said()}")
    if status is not None and status >= 500:
        return LlmError(
            f"The LLM endpoint {base_url} failed with HTTP {status}{tries}: {said()}. Check the server's "
            "log; if it keeps failing, try another llm.model or endpoint.")
    if status is not None:
        return LlmRejected(f"The LLM endpoint {base_url} refused the request (HTTP {status}): {said()}")
    return LlmBadReply(
        f"The LLM endpoint {base_url} sent a reply that is not valid OpenAI-compatible JSON ({type(exc).__name__}: "
        f"{endpoint_text(exc, secrets, 120)}); is llm.baseUrl pointing at an OpenAI-compatible API?")
