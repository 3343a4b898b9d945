"""The LSP base protocol's framing on stdin, guarded: a frame may announce at most :data:`MAX_CONTENT_LENGTH` bytes.

pygls reads ``Content-Length: N`` and then ``stdin.read(N)`` with whatever N says, so ``Content-Length:
100000000000000000`` asks for that many bytes at once (MemoryError, the server dies) and a value of more than 4,300
digits fails ``int()`` outside pygls' error handling (the server dies too). :class:`GuardedStdin` sits between
stdin and pygls' reader: a header line announcing more than the limit is replaced by one pygls ignores, logged in
one line, and the stream is resynchronised on the next ``Content-Length`` header, even when the refused body (sent
without a line break) runs into it. The connection survives; only the refused frame is lost. Upstream, pygls'
``io_.run_async`` would check the length before reading.

pygls also skips a frame that announces ``Content-Length: 0`` without a word (it takes 0 for "no length yet"), so an
empty body would get no answer at all. Here it becomes a one-byte body that is not JSON, which the protocol answers
with the parse error (-32700) that an empty body is owed.

64 MiB is far above any real LSP message (a 10 MB file opened in full is about 10.5 MB of JSON) and low enough that
one frame cannot exhaust the machine.
"""

from __future__ import annotations

import logging
import re
from typing import BinaryIO

log = logging.getLogger(__name__)

MAX_CONTENT_LENGTH = 64 * 1024 * 1024
"""The largest body a frame may announce, in bytes."""

_MAX_LINE = 64 * 1024
"""Header lines (and stretches of garbage between frames) are read in pieces of at most this many bytes."""
_HEADER = b"Content-Length:"
_LENGTH = re.compile(rb"Content-Length: *(\d+)\s*$")
_REFUSED = b"X-Refused-Content-Length: too long\r\n"
_EMPTY_BODY_STAND_IN = b" "
"""What an empty body is read as: not JSON, so it gets the parse error an empty body is owed."""


class GuardedStdin:
    """A binary stdin for pygls' ``start_io`` whose frames announce at most ``max_length`` bytes."""

    def __init__(self, raw: BinaryIO, max_length: int = MAX_CONTENT_LENGTH) -> None:
        self._raw = raw
        self._max_length = max_length
        self._empty_body_next = False

    def readline(self) -> bytes:
        line = self._raw.readline(_MAX_LINE)
        start = line.find(_HEADER)
        if start > 0:  # the tail of a refused or garbled body ran into the next frame's header
            line = line[start:]
        match = _LENGTH.match(line)
        if match is not None and self._too_long(match.group(1)):
            shown = match.group(1)[:24].decode("ascii") + ("..." if len(match.group(1)) > 24 else "")
            log.error("a message from the editor announced %s bytes (Content-Length), over the limit of %d MiB; "
                      "skipped", shown, self._max_length // (1024 * 1024))
            return _REFUSED
        if match is not None and int(match.group(1)) == 0:
            self._empty_body_next = True
            return b"Content-Length: %d\r\n" % len(_EMPTY_BODY_STAND_IN)
        return line

    def read(self, size: int) -> bytes:
        if self._empty_body_next:
            self._empty_body_next = False
            return _EMPTY_BODY_STAND_IN
        return self._raw.read(size)

    def _too_long(self, digits: bytes) -> bool:
        return len(digits) > len(str(self._max_length)) or int(digits) > self._max_length
