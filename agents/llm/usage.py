"""Token usage of the team's LLM calls, per task and in total, so each request's cost can be read and reported.

Tokens are what the endpoint reported in ``usage``; when a streaming endpoint reports none, they are estimated at
four characters a token (``estimated`` says so). Cache hits are counted apart: they cost nothing.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True)
class TokenUsage:
    """Tokens paid for and requests made (answered ones), plus answers served from the cache for free."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0
    cache_hits: int = 0
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(self.prompt_tokens + other.prompt_tokens, self.completion_tokens + other.completion_tokens,
                          self.requests + other.requests, self.cache_hits + other.cache_hits,
                          self.estimated or other.estimated)


def estimate_tokens(text: str) -> int:
    """A rough token count (four characters a token) for endpoints that report none."""
    return len(text) // 4


class UsageLedger:
    """Usage per task id and in total; the oldest tasks are forgotten past ``max_tasks`` so memory stays bounded."""

    def __init__(self, max_tasks: int = 10_000) -> None:
        self._per_task: OrderedDict[str, TokenUsage] = OrderedDict()
        self._total = TokenUsage()
        self._max_tasks = max_tasks

    def charge(self, task_id: str | None, usage: TokenUsage) -> None:
        self._total = self._total + usage
        if task_id is None:
            return
        self._per_task[task_id] = self._per_task.get(task_id, TokenUsage()) + usage
        self._per_task.move_to_end(task_id)
        while len(self._per_task) > self._max_tasks:
            self._per_task.popitem(last=False)

    def cache_hit(self, task_id: str | None) -> None:
        self.charge(task_id, TokenUsage(cache_hits=1))

    def usage_for(self, task_id: str) -> TokenUsage:
        return self._per_task.get(task_id, TokenUsage())

    @property
    def total(self) -> TokenUsage:
        return self._total

    def forget(self, task_id: str) -> TokenUsage:
        """Drop a finished task's entry (its usage stays in the total) and return it."""
        return self._per_task.pop(task_id, TokenUsage())

