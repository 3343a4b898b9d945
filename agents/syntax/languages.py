"""The languages the team understands: tree-sitter grammars from PyPI, loaded lazily, one parser per language.

A language is known by its LSP ``languageId`` (``python``, ``typescriptreact``...) or, failing that, by the file
extension of the document. Grammar packages are imported only when a document of that language first needs parsing,
so that starting the server costs nothing for languages nobody opens.
"""

from __future__ import annotations

import importlib
import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote, urlparse

import tree_sitter


@dataclass(frozen=True)
class LanguageSpec:
    """What the team knows of one language: how to load its grammar and which nodes are its units of code."""

    name: str
    language_ids: tuple[str, ...]
    extensions: tuple[str, ...]
    grammar_module: str
    grammar_function: str = "language"
    unit_types: frozenset[str] = field(default_factory=frozenset)
    """Node types that are reviewable units (functions, methods, classes)."""
    comment_types: frozenset[str] = frozenset({"comment"})

    def load_grammar(self) -> tree_sitter.Language:
        module = importlib.import_module(self.grammar_module)
        loader: Callable[[], object] = getattr(module, self.grammar_function)
        return tree_sitter.Language(loader())


LANGUAGES: tuple[LanguageSpec, ...] = (
    LanguageSpec(
        "python", ("python",), (".py", ".pyi", ".pyw"), "tree_sitter_python",
        unit_types=frozenset({"function_definition", "class_definition"}),
    ),
    LanguageSpec(
        "javascript", ("javascript", "javascriptreact"), (".js", ".mjs", ".cjs", ".jsx"), "tree_sitter_javascript",
        unit_types=frozenset({
            "function_declaration", "generator_function_declaration", "method_definition", "class_declaration",
        }),
    ),
    LanguageSpec(
        "typescript", ("typescript",), (".ts", ".mts", ".cts"), "tree_sitter_typescript", "language_typescript",
        unit_types=frozenset({
            "function_declaration", "generator_function_declaration", "method_definition", "class_declaration",
            "interface_declaration",
        }),
    ),
    LanguageSpec(
        "tsx", ("typescriptreact", "tsx"), (".tsx",), "tree_sitter_typescript", "language_tsx",
        unit_types=frozenset({
            "function_declaration", "generator_function_declaration", "method_definition", "class_declaration",
            "interface_declaration",
        }),
    ),
    LanguageSpec(
        "go", ("go",), (".go",), "tree_sitter_go",
        unit_types=frozenset({"function_declaration", "method_declaration", "type_declaration"}),
    ),
    LanguageSpec(
        "rust", ("rust",), (".rs",), "tree_sitter_rust",
        unit_types=frozenset({"function_item", "impl_item", "struct_item", "enum_item", "trait_item"}),
        comment_types=frozenset({"line_comment", "block_comment"}),
    ),
    LanguageSpec(
        "java", ("java",), (".java",), "tree_sitter_java",
        unit_types=frozenset({
            "method_declaration", "constructor_declaration", "class_declaration", "interface_declaration",
            "enum_declaration",
        }),
        comment_types=frozenset({"line_comment", "block_comment"}),
    ),
)

_BY_LANGUAGE_ID = {language_id: spec for spec in LANGUAGES for language_id in spec.language_ids}
_BY_EXTENSION = {extension: spec for spec in LANGUAGES for extension in spec.extensions}
_GRAMMARS: dict[str, tree_sitter.Language] = {}
_PARSERS: dict[str, tree_sitter.Parser] = {}


def language_for(language_id: str | None, uri: str | None = None) -> LanguageSpec | None:
    """The language of a document: from its ``languageId``, else from the extension of its URI; None if unknown."""
    if language_id:
        spec = _BY_LANGUAGE_ID.get(language_id.lower())
        if spec is not None:
            return spec
    if uri:
        path = unquote(urlparse(uri).path) if "://" in uri else uri
        extension = posixpath.splitext(path)[1].lower()
        return _BY_EXTENSION.get(extension)
    return None


def grammar(spec: LanguageSpec) -> tree_sitter.Language:
    """The compiled grammar of a language, loaded on first use."""
    loaded = _GRAMMARS.get(spec.name)
    if loaded is None:
        loaded = _GRAMMARS[spec.name] = spec.load_grammar()
    return loaded


def parser(spec: LanguageSpec) -> tree_sitter.Parser:
    """The one parser of a language. Parsers are not thread-safe: use them from the event loop's thread only."""
    loaded = _PARSERS.get(spec.name)
    if loaded is None:
        loaded = _PARSERS[spec.name] = tree_sitter.Parser(grammar(spec))
    return loaded
