"""Is poolwatch itself alive (its loops turn) and ready (every collector has polled)?

Liveness is about poolwatch, never about the systems it watches: a PostgreSQL that is down makes
polls fail, but failing polls still turn the loop. Only a loop that stopped turning is unhealthy.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from poolwatch.runtime.heartbeat import stale_after
from poolwatch.runtime.scheduler import Runner, owner_of


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    detail: dict[str, Any]


def liveness(runner: Runner, now: float | None = None) -> Verdict:
    """The heartbeat's rule, asked in-process: each collector's loop turned (a poll collected,
    evaluated and delivered, successful or not) within `heartbeat.stale_after`; before its first
    turn, counted from the runner's start."""
    now = time.time() if now is None else now
    stale: dict[str, float] = {}
    for collector in runner.collectors:
        owner = owner_of(collector)
        last = runner.stats.last_turn.get(owner, runner.started)
        if last is None or now - last > stale_after(collector):
            stale[owner] = round(now - (last or now), 3)
    return Verdict(not stale and runner.started is not None, {"stale_seconds": stale})


def readiness(runner: Runner) -> Verdict:
    """Every collector has been polled at least once."""
    waiting = [owner_of(c) for c in runner.collectors if owner_of(c) not in runner.stats.last_turn]
    return Verdict(not waiting and runner.started is not None, {"waiting_for": waiting})
