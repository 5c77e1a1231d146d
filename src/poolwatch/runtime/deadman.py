"""What poolwatch tells a dead man's switch: the webhook heartbeat and Alertmanager's
`PoolwatchWatchdog`, both given only while poolwatch is alive by the rule of `--healthcheck`.

A receiver alerts when these stop arriving, so they must stop when poolwatch is hung, not only
when it is dead: a collector's loop that no longer turns withholds them, although the event loop
(and so the timers that send them) still runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from poolwatch.core.notices import HeartbeatNotice
from poolwatch.runtime.health import liveness
from poolwatch.runtime.view import RuntimeView


class Pulse:
    def __init__(
        self,
        view: RuntimeView,
        host: str,
        version: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.view = view
        self.host = host
        self.version = version
        self.clock = clock

    def alive(self) -> bool:
        """Every collector's loop turned within its `stale_after` (as /healthz judges)."""
        return liveness(self.view, now=self.clock()).ok

    def heartbeat(self) -> HeartbeatNotice | None:
        """The heartbeat to send now, or None while poolwatch is not alive."""
        if not self.alive():
            return None
        now = self.clock()
        started = self.view.started() or now
        polled = self.view.stats().last_poll
        return HeartbeatNotice(
            host=self.host,
            version=self.version,
            uptime_seconds=max(0.0, now - started),
            firing=len(self.view.firing()),
            last_success={
                owner.name: datetime.fromtimestamp(polled[owner.name], UTC)
                if owner.name in polled
                else None
                for owner in self.view.owners()
            },
            time=datetime.fromtimestamp(now, UTC),
        )
