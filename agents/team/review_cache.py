"""Review results remembered across saves and restarts, keyed by what was reviewed and who reviewed it.

A unit whose text has not changed is never sent to the model again: its findings come from here. The key is the
unit's content hash together with the model and the prompt version, so a new model or a better prompt reviews
afresh. Stored in a small SQLite file in the user's cache dir (safe with several servers open at once).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def default_cache_path() -> Path:
    """``$METAGPT_LSP_REVIEW_CACHE`` if set, else ``review-cache.sqlite3`` in the user's cache dir."""
    override = os.environ.get("METAGPT_LSP_REVIEW_CACHE")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_cache_dir("metagpt-lsp")) / "review-cache.sqlite3"


class ReviewCache:
    """content hash + model + prompt version -> the JSON-able findings of that unit."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_cache_path()
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection | None:
        if self._connection is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._connection = sqlite3.connect(self.path, check_same_thread=False, timeout=5)
                self._connection.execute(
                    "CREATE TABLE IF NOT EXISTS reviews (key TEXT PRIMARY KEY, findings TEXT NOT NULL)")
            except sqlite3.Error as error:
                log.warning("review cache %s unavailable (%s): reviews will not be remembered", self.path, error)
                return None
        return self._connection

    @staticmethod
    def key(content_hash: str, model: str, prompt_version: str) -> str:
        return f"{prompt_version}:{model}:{content_hash}"

    def get(self, key: str) -> list[Any] | None:
        with self._lock:
            connection = self._connect()
            if connection is None:
                return None
            try:
                row = connection.execute("SELECT findings FROM reviews WHERE key = ?", (key,)).fetchone()
            except sqlite3.Error as error:
                log.warning("review cache read failed: %s", error)
                return None
        return json.loads(row[0]) if row else None

    def put(self, key: str, findings: list[Any]) -> None:
        with self._lock:
            connection = self._connect()
            if connection is None:
                return
            try:
                with connection:
                    connection.execute("INSERT OR REPLACE INTO reviews (key, findings) VALUES (?, ?)",
                                       (key, json.dumps(findings)))
            except sqlite3.Error as error:
                log.warning("review cache write failed: %s", error)

    def clear(self) -> int:
        """Forget every remembered review; returns how many there were."""
        with self._lock:
            connection = self._connect()
            if connection is None:
                return 0
            with connection:
                count = connection.execute("SELECT COUNT(*) FROM reviews").fetchone()[0]
                connection.execute("DELETE FROM reviews")
            return int(count)

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
