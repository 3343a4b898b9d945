"""The syntax layer: documents as bytes with an incrementally parsed tree-sitter tree, positions in every LSP
encoding, code units (functions, classes), and syntax problems worded for people — all without a model.
"""

from __future__ import annotations

from .code_units import CodeUnit, code_units, innermost_unit, target_node, unit_node_at
from .fingerprint import fingerprint
from .languages import LanguageSpec, language_for, parser
from .positions import LineIndex, PositionEncoding, decode, encode
from .problems import SyntaxProblem, syntax_problems
from .snapshot import DEFAULT_MAX_PARSE_BYTES, DocumentSnapshot, TextChange, TextPosition

__all__ = [
    "CodeUnit",
    "DEFAULT_MAX_PARSE_BYTES",
    "DocumentSnapshot",
    "LanguageSpec",
    "LineIndex",
    "PositionEncoding",
    "SyntaxProblem",
    "TextChange",
    "TextPosition",
    "code_units",
    "decode",
    "encode",
    "fingerprint",
    "innermost_unit",
    "language_for",
    "parser",
    "syntax_problems",
    "target_node",
    "unit_node_at",
]
