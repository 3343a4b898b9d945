"""The broker: an in-process, typed, bounded message bus between agents — tasks, request/reply, cancellation, trace.

Agents subscribe to message kinds, each with a bounded queue (publishing to a full one waits); a task scope sends a
subtask to the agent that watches its kind and waits for the reply, within the task's deadline.
"""

from __future__ import annotations

from .broker import Broker
from .messages import REPLY_KINDS, Failure, Message, MessageKind, UnexpectedPayload
from .statistics import BrokerStatistics
from .subscription import Agent, HandlerContext
from .task_scope import AgentFailed, BrokerError, RoundLimitExceeded, TaskEnded, TaskScope, TaskTrace

__all__ = [
    "Agent",
    "AgentFailed",
    "Broker",
    "BrokerError",
    "BrokerStatistics",
    "Failure",
    "HandlerContext",
    "Message",
    "MessageKind",
    "REPLY_KINDS",
    "RoundLimitExceeded",
    "TaskEnded",
    "TaskScope",
    "TaskTrace",
    "UnexpectedPayload",
]
