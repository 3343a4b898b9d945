"""Fill-in-the-middle prompt templates: how each code-model family wants the text before and after the cursor.

A FIM model is trained on one exact layout of special tokens; any other wording makes it write prose or repeat the
suffix. The family is chosen from the model's name (``qwen2.5-coder-1.5b-instruct-q4_k_m`` -> Qwen), or named
in the ``inline.fimTemplate`` setting. Each family also has its stop tokens: the model must stop at the next FIM
or file token instead of starting another file.

Extra files (signatures from open documents) are shown the way the family was trained on repositories: Qwen's and
StarCoder2's ``<file_sep>`` tokens, a path comment for the others. They come first, the current file last, so the
part of the prompt that changes while the user types is at its end (prefix KV reuse in llama.cpp).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class ContextFile:
    """Another file shown to the model before the current one (its path and the text shown, e.g. signatures)."""

    path: str
    text: str


@dataclass(frozen=True)
class FimTemplate:
    """One family's layout. ``suffix_first``: the suffix goes before the prefix (Codestral's SPM order)."""

    name: str
    prefix_token: str
    suffix_token: str
    middle_token: str
    stop: tuple[str, ...]
    file_sep: str | None = None  # a repository-level file separator token, if the family has one
    repo_token: str | None = None
    suffix_first: bool = False
    comment: str = "#"

    def prompt(self, prefix: str, suffix: str, *, path: str = "", files: tuple[ContextFile, ...] = (),
               repo: str = "") -> str:
        """The raw prompt: extra files first (stable), then this file's prefix and suffix around the hole."""
        head = self._files(path, files, repo)
        if self.suffix_first:
            return f"{head}{self.suffix_token}{suffix}{self.prefix_token}{prefix}{self.middle_token}"
        return f"{head}{self.prefix_token}{prefix}{self.suffix_token}{suffix}{self.middle_token}"

    def _files(self, path: str, files: tuple[ContextFile, ...], repo: str) -> str:
        if not files:
            return ""
        if self.file_sep is not None:
            parts = [f"{self.repo_token}{repo or 'workspace'}\n"] if self.repo_token else []
            parts += [f"{self.file_sep}{file.path}\n{file.text}\n" for file in files]
            parts.append(f"{self.file_sep}{path}\n")
            return "".join(parts)
        shown = [f"{self.comment} {file.path}\n{file.text}\n" for file in files]
        return "".join(shown) + f"{self.comment} {path}\n"


QWEN = FimTemplate(
    "qwen", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>",
    stop=("<|endoftext|>", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|fim_pad|>", "<|repo_name|>",
          "<|file_sep|>", "<|im_start|>", "<|im_end|>"),
    file_sep="<|file_sep|>", repo_token="<|repo_name|>")
STARCODER2 = FimTemplate(
    "starcoder2", "<fim_prefix>", "<fim_suffix>", "<fim_middle>",
    stop=("<|endoftext|>", "<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<fim_pad>", "<file_sep>",
          "<repo_name>"),
    file_sep="<file_sep>", repo_token="<repo_name>")
DEEPSEEK = FimTemplate(
    "deepseek", "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>",
    stop=("<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>", "<｜end▁of▁sentence｜>", "<|EOT|>"))
CODELLAMA = FimTemplate("codellama", "<PRE> ", " <SUF>", " <MID>", stop=("<PRE>", "<SUF>", "<MID>", "<EOT>"))
CODESTRAL = FimTemplate("codestral", "[PREFIX]", "[SUFFIX]", "", stop=("[PREFIX]", "[SUFFIX]", "</s>"),
                        suffix_first=True)

TEMPLATES = {template.name: template for template in (QWEN, STARCODER2, DEEPSEEK, CODELLAMA, CODESTRAL)}
_BY_MODEL = (
    (re.compile(r"qwen", re.I), QWEN),
    (re.compile(r"starcoder|stable-?code", re.I), STARCODER2),
    (re.compile(r"deepseek", re.I), DEEPSEEK),
    (re.compile(r"code-?llama", re.I), CODELLAMA),
    (re.compile(r"codestral|mistral", re.I), CODESTRAL),
)


def template_for(model: str, override: str = "auto") -> FimTemplate:
    """The template named by ``override`` (a key of :data:`TEMPLATES`), else the one the model's name suggests;
    Qwen's when the name says nothing (the embedded model's family, and a common one for local servers)."""
    if override in TEMPLATES:
        return TEMPLATES[override]
    return next((template for pattern, template in _BY_MODEL if pattern.search(model)), QWEN)
