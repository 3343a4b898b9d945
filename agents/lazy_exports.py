"""Public names of a subpackage, imported on first use.

``llm`` and ``team`` offer names whose modules pull in the ``openai`` client; importing them when the server starts
would cost its start-up time and memory for a feature the user may never touch. A subpackage lists its public names
and their modules, sets ``__getattr__ = lazy_exports(__name__, table)`` and imports the same names under
``TYPE_CHECKING`` for the type checker.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping


def lazy_exports(package: str, table: Mapping[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` that imports ``name`` from ``package`` + ``table[name]`` when first asked for."""

    def __getattr__(name: str) -> object:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module, package), name)

    return __getattr__
