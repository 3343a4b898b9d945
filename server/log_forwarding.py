"""stdlib logging for the whole process, forwarded to the editor's ``window/logMessage`` and optionally to a file.

In stdio mode stdout is the protocol channel: nothing may ever be printed there. Records go to stderr (which editors
show in their LSP log), to ``--log-file`` when given, and — once the client is connected — to ``window/logMessage``.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable

from lsprotocol import types

LEVELS = {"error": logging.ERROR, "warning": logging.WARNING, "info": logging.INFO, "debug": logging.DEBUG}
_MESSAGE_TYPES = {
    logging.ERROR: types.MessageType.Error,
    logging.WARNING: types.MessageType.Warning,
    logging.INFO: types.MessageType.Info,
    logging.DEBUG: types.MessageType.Log,
}
ROOT = "metagpt_lsp"


class EditorLogHandler(logging.Handler):
    """Sends log records to the editor as ``window/logMessage``; never re-enters itself while sending."""

    def __init__(self, send: Callable[[types.LogMessageParams], None], level: int = logging.INFO) -> None:
        super().__init__(level)
        self._send = send
        self._local = threading.local()
        self.connected = False

    def emit(self, record: logging.LogRecord) -> None:
        if not self.connected or getattr(self._local, "busy", False):
            return
        self._local.busy = True
        try:
            kind = _MESSAGE_TYPES.get(record.levelno) or (
                types.MessageType.Error if record.levelno > logging.ERROR else types.MessageType.Log)
            self._send(types.LogMessageParams(type=kind, message=self.format(record)))
        except Exception:  # noqa: BLE001 - a log line must never take the server down
            pass
        finally:
            self._local.busy = False


def configure(level: str = "info", log_file: str | None = None) -> None:
    """Process-wide logging: our records to stderr and the optional file; pygls' own when they are warnings, and
    its server's start and stop lines."""
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    ours = logging.getLogger(ROOT)
    ours.setLevel(LEVELS.get(level, logging.INFO))
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    root = logging.getLogger()
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("pygls").setLevel(logging.WARNING)
    # Except pygls' few server lifecycle lines: "Serving on ('127.0.0.1', 2087)" says a --tcp/--ws server listens.
    logging.getLogger("pygls.server").setLevel(logging.INFO)


def set_level(level: str) -> None:
    logging.getLogger(ROOT).setLevel(LEVELS.get(level, logging.INFO))


def attach_editor(handler: EditorLogHandler) -> None:
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.getLogger(ROOT).addHandler(handler)
