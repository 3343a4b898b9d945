"""The messages the agent team exchanges over the broker: small frozen records, one kind each.

A message belongs to one task (``task_id``), says what it is (``kind``), who sent it, what it carries (``payload``,
an immutable value), which message caused it (``cause``), when its task must be over (``deadline``, on the
``time.monotonic`` clock that asyncio's loop uses) and, for a reply, which request it answers (``correlation_id``).
Every message has its own ``id``. Kinds are a closed enum so that a typo is an error, not a message nobody reads.
A reader takes the payload as the type it expects with ``payload_as`` (or ``payload_items`` for a tuple of records),
which checks it: a payload of another type is a bug of the sender, named by ``UnexpectedPayload``.
"""

from __future__ import annotations

import itertools
import reprlib
from dataclasses import dataclass, field, fields, is_dataclass
from enum import StrEnum
from typing import TypeVar

P = TypeVar("P")


class MessageKind(StrEnum):
    """What a message asks for or answers. ``task.*`` start a task, ``subtask.*`` are its steps."""

    SUBTASK_EXPLAIN = "subtask.explain"
    SUBTASK_PROPOSE_FIX = "subtask.propose_fix"
    SUBTASK_GENERATE = "subtask.generate"
    SUBTASK_VERIFY = "subtask.verify"
    SUBTASK_REVIEW_UNITS = "subtask.review_units"
    SUBTASK_CHALLENGE = "subtask.challenge"
    SUBTASK_SEARCH_REPAIR = "subtask.search_repair"
    """When every candidate failed the unit's examples: review tries one-token repairs of it against them."""
    """Review asks diagnosis whether its proposed findings are real defects, and for an input that shows each."""
    REJECT = "reject"
    """A reviewer sends a patch back to its author with the reason; the next round sees it."""
    REPLY = "reply"
    ERROR = "error"
    """A reply saying the handler failed; its payload is a ``Failure``."""

    @property
    def is_reply(self) -> bool:
        """Replies answer a request; they go to the requester, never to a subscriber's queue."""
        return self is MessageKind.REPLY or self is MessageKind.ERROR


class UnexpectedPayload(TypeError):
    """A message carries a payload of another type than its reader expects: a bug in whoever sent it."""


REPLY_KINDS = frozenset({MessageKind.REPLY, MessageKind.ERROR})

_MUTABLE_PAYLOADS = (list, dict, set, bytearray)
_ids = itertools.count(1)


def new_id(prefix: str = "m") -> str:
    """A process-unique id, cheap enough to make one per message."""
    return f"{prefix}{next(_ids):x}"


@dataclass(frozen=True, slots=True)
class Failure:
    """The payload of an ``ERROR`` reply: which agent failed and why, as text a user can read."""

    agent: str
    error: str

    def summary(self) -> str:
        return f"{self.agent} failed: {self.error}"


@dataclass(frozen=True, slots=True)
class Message:
    """One message of one task. Build replies with ``reply``/``failure`` so they carry the correlation id."""

    task_id: str
    kind: MessageKind
    sender: str
    payload: object = None
    cause: str | None = None
    deadline: float | None = None
    correlation_id: str | None = None
    id: str = field(default_factory=new_id)

    def __post_init__(self) -> None:
        if not isinstance(self.kind, MessageKind):
            try:
                object.__setattr__(self, "kind", MessageKind(self.kind))
            except ValueError:
                known = ", ".join(k.value for k in MessageKind)
                raise ValueError(f"unknown message kind {self.kind!r} (known: {known})") from None
        if isinstance(self.payload, _MUTABLE_PAYLOADS):
            raise TypeError(
                f"a {self.kind} payload must be immutable, got a {type(self.payload).__name__}: "
                "use a tuple, frozenset, str or frozen dataclass"
            )
        if self.kind.is_reply and self.correlation_id is None:
            raise ValueError(f"a {self.kind} message needs the correlation id of the request it answers")

    def payload_as(self, expected: type[P]) -> P:
        """The payload, checked to be an ``expected``; ``UnexpectedPayload`` names the message when it is not."""
        if not isinstance(self.payload, expected):
            raise UnexpectedPayload(f"{self.kind} {self.id} from {self.sender} carries a "
                                    f"{type(self.payload).__name__}, not the {expected.__name__} its reader expects")
        return self.payload

    def payload_items(self, expected: type[P]) -> tuple[P, ...]:
        """The payload, checked to be a tuple of ``expected`` (a reply that answers with several records)."""
        items = self.payload_as(tuple)
        for item in items:
            if not isinstance(item, expected):
                raise UnexpectedPayload(f"{self.kind} {self.id} from {self.sender} carries a tuple holding a "
                                        f"{type(item).__name__}, not only the {expected.__name__}s its reader expects")
        return items

    def reply(self, sender: str, payload: object = None) -> Message:
        """The answer to this message, from ``sender``."""
        return Message(self.task_id, MessageKind.REPLY, sender, payload, self.id, self.deadline, self.id)

    def failure(self, sender: str, error: str) -> Message:
        """An ``ERROR`` reply to this message: ``sender`` could not handle it, ``error`` says why."""
        return Message(self.task_id, MessageKind.ERROR, sender, Failure(sender, error), self.id, self.deadline, self.id)

    def follow_up(self, kind: MessageKind | str, sender: str, payload: object = None) -> Message:
        """A new message of the same task, caused by this one (e.g. a reviewer's ``REJECT`` of a proposal)."""
        return Message(self.task_id, MessageKind(kind), sender, payload, self.id, self.deadline)


def summarize(payload: object, limit: int = 60) -> str:
    """A one-line description of a payload for traces, cheap whatever its size.

    Its ``summary()`` if it has one; for a dataclass, its type and first fields; otherwise a repr that
    ``reprlib`` keeps short (a whole document's text is never formatted to be thrown away).
    """
    if payload is None:
        return ""
    summary = getattr(payload, "summary", None)
    if callable(summary):
        text = str(summary())
    elif is_dataclass(payload) and not isinstance(payload, type):
        shown = ", ".join(f"{f.name}={_short.repr(getattr(payload, f.name))}" for f in fields(payload)[:3])
        text = f"{type(payload).__name__}({shown}{', …' if len(fields(payload)) > 3 else ''})"
    else:
        text = _short.repr(payload)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


_short = reprlib.Repr()
_short.maxstring = _short.maxother = 60
_short.maxlevel = 3
