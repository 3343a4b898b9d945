"""Offers already computed, and **type-through**: typing the first characters of the offer shown gets the rest at
once, with no model call.

Entries are keyed by the bytes just before and just after the cursor (a fixed number of them, read from the
document, not from the prompt window, so a window that moved does not hide an offer). A lookup for a cursor whose
text before ends with an entry's text before plus the start of that entry's offer — and whose text after is the
same — answers with the rest of that offer. "Nothing to show" is remembered too: asking again at the same place
costs nothing. Least recently used entries go first (llama.vim keeps 250).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from .offer_rules import Offer

KEY_BEFORE, KEY_AFTER = 1024, 256


@dataclass(frozen=True)
class CursorKey:
    before: bytes
    after: bytes

    @classmethod
    def at(cls, source: bytes, cursor: int) -> CursorKey:
        return cls(source[max(0, cursor - KEY_BEFORE):cursor], source[cursor:cursor + KEY_AFTER])


class OfferCache:
    """An LRU of offers; :meth:`lookup` does exact hits and type-through."""

    def __init__(self, entries: int = 250) -> None:
        self._entries: OrderedDict[CursorKey, Offer] = OrderedDict()
        self._capacity = max(1, entries)
        self.hits = 0
        self.typed_through = 0

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, key: CursorKey, offer: Offer) -> None:
        self._entries[key] = offer
        self._entries.move_to_end(key)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

    def lookup(self, source: bytes, cursor: int) -> Offer | None:
        """The offer for this cursor: remembered for it, or the rest of one whose start was typed since."""
        key = CursorKey.at(source, cursor)
        if (offer := self._entries.get(key)) is not None:
            self._entries.move_to_end(key)
            self.hits += 1
            return offer
        for old_key, old in reversed(self._entries.items()):
            if old_key.after != key.after or not old.text:
                continue
            text = old.text.encode("utf-8", "surrogatepass")
            for typed in range(1, len(text)):
                start = cursor - typed
                if start < 0:
                    break
                if source[start:cursor] != text[:typed] or not _whole(text, typed):
                    continue
                if source[max(0, start - KEY_BEFORE):start] == old_key.before:
                    rest = text[typed:].decode("utf-8", "surrogatepass")
                    self.typed_through += 1
                    offer = Offer(rest, old.replace_chars)
                    self.put(key, offer)
                    return offer
        return None


def _whole(text: bytes, index: int) -> bool:
    """Whether ``index`` falls between two characters of UTF-8 ``text``."""
    return index >= len(text) or not 0x80 <= text[index] <= 0xBF
