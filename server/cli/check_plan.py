"""What a ``check`` run will do: one task per file, each keyed by everything its result depends on.

A task's key is a hash of the file's path and content, the text it is compared with (HEAD's, a ``--diff`` ref's, or
nothing for ``--all``), the model, the team's prompt version and the task options: the same key means the same work,
so a result recorded under it can be reused by a rerun (``--results``), and a changed file, base, model, prompt or
option gets a new key. The LLM endpoints are shared out round-robin, so a fleet of model servers is used evenly.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from .check_worker import FileTask, LlmTarget, TaskOptions


@dataclass(frozen=True)
class Plan:
    tasks: list[FileTask]
    unchanged: int
    """Files skipped because they are the same as the ``--diff`` base."""
    problems: list[str]


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def task_key(path: str, text_hash: str, base_text: str | None, model: str, prompt_version: str,
             options: TaskOptions) -> str:
    base = "every-unit" if base_text is None else content_hash(base_text)
    material = f"{path}\n{text_hash}\n{base}\n{model}\n{prompt_version}\n{options.as_key()}"
    return hashlib.sha256(material.encode()).hexdigest()


def plan_tasks(files: list[Path], options: TaskOptions, model: str, *, review_all: bool = False,
               diff_ref: str | None = None) -> Plan:
    """Read each file and decide what it is compared with; unreadable files become problems, not tasks."""
    from metagpt_lsp.agents.team import PROMPT_VERSION, text_at

    tasks: list[FileTask] = []
    problems: list[str] = []
    unchanged = 0
    for path in files:
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as error:
            problems.append(f"{path}: cannot be read as UTF-8 text ({error})")
            continue
        except OSError as error:
            problems.append(f"{path}: cannot be read ({error})")
            continue
        base: str | None = None
        if diff_ref is not None:
            base, why = text_at(path, diff_ref)
            if base is None and why.startswith(("no commit", "git failed", "not in a git", "a bare")):
                problems.append(f"{path}: cannot compare with {diff_ref}: {why}")
                continue
            if base == text:
                unchanged += 1
                continue
        elif not review_all:
            base, _why = text_at(path, "HEAD")
        text_hash = content_hash(text)
        tasks.append(FileTask(task_key(str(path), text_hash, base, model, PROMPT_VERSION, options), str(path),
                              path.resolve().as_uri(), text, base, text_hash))
    return Plan(tasks, unchanged, problems)


def share_endpoints(targets: list[LlmTarget], index: int, attempt: int = 0) -> LlmTarget:
    """The endpoint for the ``index``-th task's ``attempt``: round-robin, and a retry goes to the next one."""
    return targets[(index + attempt) % len(targets)]
