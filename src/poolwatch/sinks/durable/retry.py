"""The retry policy: capped exponential backoff with jitter, and `Retry-After` parsing.

Hand-written rather than `tenacity`: tenacity retries one call, but here the "call" is the head
of a queue that a delivery loop keeps retrying across wake-ups; the wait must take the server's
`Retry-After` over the curve, and the sleep must end early when poolwatch shuts down. Expressed in
tenacity that is a custom wait, a custom sleep and a custom retry predicate: more code than the
policy itself, which is below and tested as a pure function.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

RETRY_AFTER_CAP = 300.0
"""The longest `Retry-After` obeyed as such (unless retry_max is longer)."""


class Backoff:
    """Delay before attempt n+1 after n failures: `initial * 2**(n-1)`, capped at `maximum`.

    "Equal jitter": the delay is drawn from [d/2, d], so that senders that failed together spread
    out, yet never hammer the receiver with a near-zero wait. A server's `Retry-After` wins when it
    is longer, up to `maximum` or RETRY_AFTER_CAP, whichever is larger (a receiver asking for a
    day must not stall the queue that long without poolwatch checking again).
    """

    def __init__(
        self,
        initial: float = 0.5,
        maximum: float = 300.0,
        *,
        rand: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self.initial = initial
        self.maximum = max(maximum, initial)
        self._rand = rand

    def delay(self, failures: int, retry_after: float | None = None) -> float:
        ceiling = min(self.maximum, self.initial * 2.0 ** max(0, min(failures - 1, 64)))
        chosen = self._rand(ceiling / 2, ceiling)
        if retry_after is not None:
            chosen = max(chosen, min(retry_after, max(self.maximum, RETRY_AFTER_CAP)))
        return chosen


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """`Retry-After` as seconds from now: delta-seconds or an HTTP date; None when absent/bad."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())
