"""Finding a model's quoted snippet in the document: findings are anchored by text, never by model line numbers.

Models misquote whitespace: they collapse indentation, drop trailing spaces, re-wrap. A snippet is matched as a
sequence of tokens separated by any whitespace, first inside the unit it was quoted from, then anywhere in the
document; failing that, its longest line is tried alone. The match is returned as a byte range of the snapshot.
"""

from __future__ import annotations

import re

from ..syntax.positions import encode
from ..syntax.snapshot import DocumentSnapshot

_MIN_ANCHOR_CHARS = 3


def _pattern(snippet: str) -> re.Pattern[str] | None:
    tokens = snippet.split()
    if not tokens or sum(len(token) for token in tokens) < _MIN_ANCHOR_CHARS:
        return None
    return re.compile(r"\s+".join(re.escape(token) for token in tokens))


def _search(text: str, snippet: str) -> tuple[int, int] | None:
    pattern = _pattern(snippet)
    if pattern is None:
        return None
    match = pattern.search(text)
    return (match.start(), match.end()) if match else None


def locate_snippet(
    snapshot: DocumentSnapshot, snippet: str, within: tuple[int, int] | None = None
) -> tuple[int, int] | None:
    """Byte range of ``snippet`` in the snapshot, preferring the ``within`` byte range; None if it is not there."""
    snippet = snippet.strip().strip("`").strip()
    if not snippet:
        return None
    regions = [within] if within else []
    regions.append((0, len(snapshot.source)))
    candidates = [snippet]
    longest = max(snippet.splitlines(), key=lambda line: len(line.strip()), default="")
    if longest.strip() and longest.strip() != snippet:
        candidates.append(longest)
    for candidate in candidates:
        for start, end in regions:
            region = snapshot.source[start:end].decode("utf-8", "surrogatepass")
            found = _search(region, candidate)
            if found is not None:
                prefix = len(encode(region[:found[0]]))
                return start + prefix, start + prefix + len(encode(region[found[0]:found[1]]))
    return None
