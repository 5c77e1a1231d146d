"""Is poolwatch itself alive (its loops turn) and ready (every collector has polled)?

Liveness is about poolwatch, never about the systems it watches: a PostgreSQL that is down makes
polls fail, but failing polls still turn the loop. Only a loop that stopped turning is unhealthy.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from poolwatch.runtime.heartbeat import Heartbeat, stale_after
from poolwatch.runtime.view import RuntimeView


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    detail: dict[str, Any]


def liveness(
    view: RuntimeView, now: float | None = None, heartbeat: Heartbeat | None = None
) -> Verdict:
    """The heartbeat's rule, asked in-process: each collector's loop turned (a poll collected,
    evaluated and delivered, successful or not) within `heartbeat.stale_after`; before its first
    turn, counted from the runner's start. And, as `--healthcheck` sees it, the heartbeat file
    could be written within its last three periods."""
    now = time.time() if now is None else now
    started, last_turn = view.started(), view.stats().last_turn
    stale: dict[str, float] = {}
    for owner in view.owners():
        last = last_turn.get(owner.name, started)
        if last is None or now - last > stale_after(owner):
            stale[owner.name] = round(now - (last or now), 3)
    detail: dict[str, Any] = {"stale_seconds": stale}
    unwritable = heartbeat.failing(now) if heartbeat is not None else None
    if unwritable:
        detail["heartbeat"] = unwritable
    return Verdict(not stale and not unwritable and started is not None, detail)


def readiness(view: RuntimeView) -> Verdict:
    """Every collector has been polled at least once."""
    last_turn = view.stats().last_turn
    waiting = [owner.name for owner in view.owners() if owner.name not in last_turn]
    return Verdict(not waiting and view.started() is not None, {"waiting_for": waiting})
