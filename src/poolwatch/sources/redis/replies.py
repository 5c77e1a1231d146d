"""Every Redis reply read under a size cap: redis-py's own parsers, checked before they read.

redis-py reads a bulk string of whatever length its `$<length>` header announces, and an array of
as many elements as `*<count>` says: a wrong or hostile endpoint that answers `INFO` with
`$2000000000` made one poll grow by hundreds of MB before the read timeout ended it. These
parsers keep redis-py's Python RESP parsing and give each reply a budget of
`REPLY_MAX_BYTES`: every header spends what it announces *before* anything it announces is read
(a bulk string its length, an aggregate `ELEMENT_BYTES` per element), so an announcement over
the budget is refused at once, with `ReplyTooLargeError`, and nothing of it is read. A line (a
status, an error, a header) is limited by asyncio's stream limit (64 KiB), which is turned into
the same error. hiredis, when installed, is not used: it offers no such check.

The budget is far above real replies: `INFO` is about 6 KB, `CLIENT LIST` about 300 bytes per
client (3 MB at Redis's default `maxclients` 10,000).
"""

from __future__ import annotations

from typing import Any

from redis._parsers import _AsyncRESP2Parser, _AsyncRESP3Parser
from redis.exceptions import InvalidResponse

MIB = 1024 * 1024
REPLY_MAX_BYTES = 64 * MIB
"""At most this much of one reply is read (what it announces counts before it is read)."""
ELEMENT_BYTES = 8
"""What one element of an announced aggregate costs the budget: the reference it will take."""

_LENGTHS = frozenset(b"$=!")
"""Headers followed by that many bytes: bulk string, verbatim string, bulk error."""
_AGGREGATES = {ord("*"): 1, ord("~"): 1, ord(">"): 1, ord("%"): 2, ord("|"): 2}
"""Headers followed by that many elements (maps and attributes: twice, key and value)."""


class ReplyTooLargeError(InvalidResponse):
    """A reply announced more than its budget: refused before it was read."""


def _count(line: bytes) -> int:
    try:
        return max(0, int(line[1:]))
    except ValueError:
        return 0  # not a number: redis-py's own parsing says what is wrong with it


class _Budgeted:
    """Mixed into redis-py's asyncio RESP parsers (their `_readline` reads every header)."""

    budget = REPLY_MAX_BYTES
    _left = REPLY_MAX_BYTES

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        self._left = self.budget
        return await super().read_response(*args, **kwargs)  # type: ignore[misc]

    async def _readline(self) -> bytes:
        try:
            line: bytes = await super()._readline()  # type: ignore[misc]
        except ValueError:  # asyncio's stream limit: a line without end in sight
            raise ReplyTooLargeError(
                "a reply line is longer than 64 KiB (poolwatch's cap): not read"
            ) from None
        self._spend(len(line) + 2, line)
        if line and line[0] in _LENGTHS:
            self._spend(_count(line), line)
        elif line and line[0] in _AGGREGATES:
            self._spend(_count(line) * ELEMENT_BYTES * _AGGREGATES[line[0]], line)
        return line

    def _spend(self, amount: int, line: bytes) -> None:
        self._left -= amount
        if self._left < 0:
            announced = line[:24].decode("ascii", "replace")
            raise ReplyTooLargeError(
                f"the reply is larger than poolwatch's cap of {self.budget // MIB} MiB for one "
                f"reply (it announced {announced!r}): not read, connection closed"
            )


class BoundedRESP2Parser(_Budgeted, _AsyncRESP2Parser):
    """RESP2 (what poolwatch asks for) under the reply budget."""


class BoundedRESP3Parser(_Budgeted, _AsyncRESP3Parser):
    """RESP3 (a URL's `?protocol=3`) under the reply budget."""


def parser_for(protocol: object) -> type[Any]:
    """The bounded parser for the RESP version a connection speaks."""
    return BoundedRESP3Parser if str(protocol) == "3" else BoundedRESP2Parser
