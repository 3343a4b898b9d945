"""The typed settings tree, read from ``initializationOptions`` and ``workspace/configuration``.

Editors send camelCase JSON (``{"llm": {"baseUrl": ..., "maxTokens": 512}}``), either bare or under the section
name ``metagptLsp``. Each value is converted on its own: a bad one falls back to its default and comes back as a
:class:`SettingsProblem` that says which and why, so the server can tell the user instead of failing or guessing.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import cattrs

from metagpt_lsp.agents.llm import LlmSettings
from metagpt_lsp.agents.team import GraphError, graph_from_settings

log = logging.getLogger(__name__)

SECTION = "metagptLsp"
LOG_LEVELS = ("error", "warning", "info", "debug")
FIM_TEMPLATES = ("auto", "qwen", "starcoder2", "deepseek", "codellama", "codestral")


@dataclass(frozen=True)
class SyntaxSettings:
    """Instant syntax diagnostics from the tree-sitter tree."""

    enabled: bool = True
    max_parse_bytes: int = 4 * 1024 * 1024
    """Documents larger than this are kept as text only: no tree, no syntax diagnostics (the user is told)."""


@dataclass(frozen=True)
class ReviewSettings:
    """On-save review by the agent team: only the functions and classes that changed since HEAD."""

    on_save: bool = True
    max_units: int = 20
    """At most this many changed units are sent per save (the rest wait for the next save)."""


@dataclass(frozen=True)
class InlineSettings:
    """Inline code generation (ghost text) as the user types."""

    enabled: bool = True
    debounce_ms: int = 300
    deadline_s: float = 20.0
    prefix_lines: int = 256
    """Lines before the cursor the model sees (llama.vim's default)."""
    suffix_lines: int = 64
    """Lines after the cursor the model sees."""
    max_prompt_tokens: int = 1536
    """A budget for the whole fill-in-the-middle prompt (window and signatures); the window shrinks to fit."""
    max_tokens: int = 128
    """The most tokens one offer may take (a single-line offer takes at most 48)."""
    fim_template: str = "auto"
    """The fill-in-the-middle template: auto (from the model's name), qwen, starcoder2, deepseek, codellama or
    codestral."""


@dataclass(frozen=True)
class TeamReviewSettings:
    """How a review finding's evidence becomes a severity: its confidence (review's and diagnosis's votes combined by
    the cooperation graph's edge weights) must reach the severity's threshold; Warning and Error also need a claimed
    input that really ran red (only where code may run)."""

    error_confidence: float = 0.8
    warning_confidence: float = 0.8
    information_confidence: float = 0.8
    unconfirmed: str = "drop"
    """What becomes of a finding below every threshold: "drop" it, or show it as a "hint"."""


@dataclass(frozen=True)
class TeamSettings:
    """The agent team: its cooperation graph and how generation proposes fixes."""

    graph: dict | None = None
    """An override of the cooperation graph (``{"edges": [...], "maxRounds": 3}``) as
    ``graph_from_settings`` takes it; None is the default graph. An invalid override is refused whole."""
    fix_candidates: int = 1
    """How many candidate fixes generation proposes per round."""
    run_doctests: bool = False
    """Run the doctests of a patched function before accepting it (opt-in); superseded by ``run_code``."""
    run_code: str = "onRequest"
    """When the team may run your code in its sandbox (see :func:`may_run_code`): "never", "onRequest" (a fix,
    "Review function") or "onSaveToo" (also review on save, only in a trusted workspace)."""
    review: TeamReviewSettings = field(default_factory=TeamReviewSettings)


@dataclass(frozen=True)
class Settings:
    """Everything the user can set. Field names are snake_case here and camelCase in JSON."""

    llm: LlmSettings = field(default_factory=LlmSettings)
    syntax: SyntaxSettings = field(default_factory=SyntaxSettings)
    review: ReviewSettings = field(default_factory=ReviewSettings)
    inline: InlineSettings = field(default_factory=InlineSettings)
    team: TeamSettings = field(default_factory=TeamSettings)
    log_level: str = "info"
    workspace_trusted: bool | None = None
    """What the client says of the workspace (``workspaceTrusted`` in initializationOptions; VS Code sends
    ``workspace.isTrusted``): False never runs code; None (not said) runs it only on an explicit request."""


RUN_CODE = ("never", "onRequest", "onSaveToo")


def may_run_code(settings: Settings, on_save: bool) -> bool:
    """Whether the team may execute the user's code now. Never while typing (callers never ask then); never in a
    workspace the client calls untrusted; on an explicit request unless ``team.runCode`` is "never"; on save only
    with "onSaveToo" and a workspace the client calls trusted."""
    if settings.workspace_trusted is False or settings.team.run_code == "never":
        return False
    if on_save:
        return settings.team.run_code == "onSaveToo" and settings.workspace_trusted is True
    return True


_CHECKS: dict[str, tuple[typing.Callable[[Any], bool], str]] = {
    "log_level": (lambda value: value in LOG_LEVELS, f"one of {', '.join(LOG_LEVELS)}"),
    "max_parse_bytes": (lambda value: value > 0, "a positive number of bytes"),
    "max_units": (lambda value: 1 <= value <= 500, "between 1 and 500"),
    "fix_candidates": (lambda value: 1 <= value <= 5, "between 1 and 5"),
    "run_code": (lambda value: value in RUN_CODE, "one of never, onRequest, onSaveToo"),
    "debounce_ms": (lambda value: 0 <= value <= 10_000, "between 0 and 10000 milliseconds"),
    "deadline_s": (lambda value: value > 0, "a positive number of seconds"),
    "prefix_lines": (lambda value: 0 <= value <= 10_000, "between 0 and 10000 lines"),
    "suffix_lines": (lambda value: 0 <= value <= 10_000, "between 0 and 10000 lines"),
    "max_prompt_tokens": (lambda value: 64 <= value <= 131_072, "between 64 and 131072 tokens"),
    "fim_template": (lambda value: value in FIM_TEMPLATES, f"one of {', '.join(FIM_TEMPLATES)}"),
    "max_tokens": (lambda value: 1 <= value <= 32768, "between 1 and 32768"),
    "max_retries": (lambda value: 0 <= value <= 10, "between 0 and 10"),
    "max_concurrent_requests": (lambda value: 1 <= value <= 64, "between 1 and 64"),
    "temperature": (lambda value: 0 <= value <= 2, "between 0 and 2"),
    "repeat_penalty": (lambda value: 0.5 <= value <= 2, "between 0.5 and 2"),
    "request_timeout_s": (lambda value: value > 0, "a positive number of seconds"),
    "connect_timeout_s": (lambda value: value > 0, "a positive number of seconds"),
    "task_deadline_s": (lambda value: value > 0, "a positive number of seconds"),
    "error_confidence": (lambda value: 0 <= value <= 1, "between 0 and 1"),
    "warning_confidence": (lambda value: 0 <= value <= 1, "between 0 and 1"),
    "information_confidence": (lambda value: 0 <= value <= 1, "between 0 and 1"),
    "unconfirmed": (lambda value: value in ("drop", "hint"), "\"drop\" or \"hint\""),
    "base_url": (lambda value: value is None or re.match(r"^https?://", value) is not None,
                 "an http:// or https:// URL"),
}


@dataclass(frozen=True)
class SettingsProblem:
    """A value that could not be used: where it was, what was wrong, and what is used instead."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"Setting {self.path}: {self.message}"


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


_converter = cattrs.Converter(forbid_extra_keys=True)
_LEAVES = (bool, int, float, str, dict, type(None))


def _structure(value: Any, kind: Any) -> Any:
    """Strict conversion of one leaf value: no silent str->int or float->bool coercion."""
    union = typing.get_origin(kind) in (typing.Union, types.UnionType)
    allowed = typing.get_args(kind) if union else (kind,)
    for option in allowed:
        if option is type(None) and value is None:
            return None
        if option is bool and isinstance(value, bool):
            return value
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if option is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if option is str and isinstance(value, str):
            return value
        if option is dict and isinstance(value, Mapping):
            return dict(value)
    if all(option in _LEAVES for option in allowed):
        _fail(value, allowed)
    return _converter.structure(value, kind)


def _fail(value: Any, allowed: tuple[Any, ...]) -> typing.NoReturn:
    shown = {type(None): "null", dict: "an object"}
    names = " or ".join(shown.get(option, option.__name__) for option in allowed)
    raise TypeError(f"expected {names}, got {type(value).__name__} {value!r}")


def parse_settings(raw: Any, base: Settings | None = None) -> tuple[Settings, list[SettingsProblem]]:
    """Settings from editor JSON (bare or under ``metagptLsp``), over ``base``; bad values keep ``base``'s value."""
    base = base or Settings()
    if isinstance(raw, Mapping) and isinstance(raw.get(SECTION), Mapping):
        raw = raw[SECTION]
    if raw is None:
        return base, []
    problems: list[SettingsProblem] = []
    if not isinstance(raw, Mapping):
        problems.append(SettingsProblem(SECTION, f"expected an object, got {type(raw).__name__}; ignored"))
        return base, problems
    return _parse_object(raw, base, "", problems), problems


def _parse_object(raw: Mapping[str, Any], current: Any, prefix: str, problems: list[SettingsProblem]) -> Any:
    fields = {camel(item.name): item for item in dataclasses.fields(current)}
    hints = typing.get_type_hints(type(current))
    changes: dict[str, Any] = {}
    for key, value in raw.items():
        path = f"{prefix}{key}"
        item = fields.get(key) or next((f for f in fields.values() if f.name == key), None)
        if item is None:
            problems.append(SettingsProblem(path, "unknown setting, ignored"))
            continue
        kind = hints[item.name]
        old = getattr(current, item.name)
        if dataclasses.is_dataclass(kind):
            if isinstance(value, Mapping):
                changes[item.name] = _parse_object(value, old, f"{path}.", problems)
            elif value is not None:
                problems.append(SettingsProblem(path, f"expected an object, got {type(value).__name__}; ignored"))
            continue
        try:
            converted = _structure(value, kind)
        except Exception as error:  # noqa: BLE001 - every conversion failure becomes a message
            problems.append(SettingsProblem(path, f"{_reason(error)}; using {_shown(old)}"))
            continue
        check = _CHECKS.get(item.name)
        if check is not None and converted is not None and not check[0](converted):
            problems.append(SettingsProblem(path, f"{_shown(converted)} is not {check[1]}; using {_shown(old)}"))
            continue
        if item.name == "graph" and (wrong := _graph_problems(converted)):
            kept = "the default graph" if old is None else "the previous override"
            problems.append(SettingsProblem(path, f"{'; '.join(wrong)}; using {kept}"))
            continue
        changes[item.name] = converted
    return dataclasses.replace(current, **changes) if changes else current


def _graph_problems(override: dict | None) -> tuple[str, ...]:
    """Every reason the cooperation graph override is invalid (none when it is valid or absent)."""
    try:
        graph_from_settings(override)
    except GraphError as error:
        return error.problems
    return ()


def _reason(error: Exception) -> str:
    if isinstance(error, cattrs.BaseValidationError) and error.exceptions:
        return _reason(error.exceptions[0])
    return str(error) or type(error).__name__


def _shown(value: Any) -> str:
    return "the default (none)" if value is None else repr(value)


def to_json(settings: Settings) -> dict[str, Any]:
    """The settings as editor JSON (camelCase), e.g. for the status command and the editor clients' defaults."""

    def convert(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {camel(item.name): convert(getattr(value, item.name)) for item in dataclasses.fields(value)}
        return value

    return convert(settings)
