"""The one retry curve: capped exponential backoff with equal jitter.

Every retry in poolwatch (a durable sink's next delivery attempt, a source's next reconnect)
waits on this curve, so that all of them spread out the same way and a test can pin it with
`rand`. Hand-written rather than `tenacity`: the callers retry across polls and wake-ups, not
one call, so only the delay is shared; each caller keeps its own loop.
"""

from __future__ import annotations

import random
from collections.abc import Callable

RETRY_AFTER_CAP = 300.0
"""The longest server-requested wait (`Retry-After`) obeyed as such (unless `maximum` is longer)."""


class Backoff:
    """Delay before attempt n+1 after n failures: `initial * 2**(n-1)`, capped at `maximum`.

    "Equal jitter": the delay is drawn from [d/2, d], so that clients that failed together spread
    out, yet never hammer the server with a near-zero wait. A server's `Retry-After` wins when it
    is longer, up to `maximum` or RETRY_AFTER_CAP, whichever is larger (a receiver asking for a
    day must not stall the caller that long without poolwatch checking again).
    """

    def __init__(
        self,
        initial: float,
        maximum: float,
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
