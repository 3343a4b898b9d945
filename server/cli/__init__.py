"""The command line: ``metagpt-lsp`` serves LSP (stdio, TCP, WebSocket); ``check`` reviews and fixes files through the
real server; ``doctor`` probes the model endpoint; ``team`` prints the cooperation graph."""

from __future__ import annotations

from .main import main

__all__ = ["main"]
