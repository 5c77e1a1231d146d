"""Is poolwatch itself alive (its loops turn) and ready (every collector has polled)?

Liveness is about poolwatch, never about the systems it watches: a PostgreSQL that is down makes
polls fail, but failing polls still turn the loop. Only a loop that stopped turning is unhealthy.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from poolwatch.runner import Runner, owner_of

SLACK_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    detail: dict[str, Any]


def liveness(runner: Runner, now: float | None = None) -> Verdict:
    """Each collector's loop finished a poll (successful or not) within two intervals plus
    its timeout and a little slack; before its first poll, counted from the runner's start."""
    now = time.monotonic() if now is None else now
    stale: dict[str, float] = {}
    for collector in runner.collectors:
        owner = owner_of(collector)
        last = runner.stats.last_turn.get(owner, runner.started)
        allowed = 2 * collector.interval + collector.timeout + SLACK_SECONDS
        if last is None or now - last > allowed:
            stale[owner] = round(now - (last or now), 3)
    return Verdict(not stale and runner.started is not None, {"stale_seconds": stale})


def readiness(runner: Runner) -> Verdict:
    """Every collector has been polled at least once."""
    waiting = [owner_of(c) for c in runner.collectors if owner_of(c) not in runner.stats.last_turn]
    return Verdict(not waiting and runner.started is not None, {"waiting_for": waiting})
