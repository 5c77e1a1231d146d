"""The reconnect gate: failures in a row, when the next attempt may start, and the log lines
that say so, one wording for every source that keeps a connection (PostgreSQL, PgBouncer,
Redis) and for the login probe (`sources/login.py`, which retries at once: no backoff).

Why one class: each collector used to count failures, schedule the retry, word "next attempt
in N s" and log the reconnect its own way. A source keeps what is its own: which error means
"the server is full" (it passes `saturated=True`) and what it reports then.

Pure bookkeeping over an injected clock; the caller's bound logger is passed in, so the gate
imports no logging of its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from poolwatch.core.backoff import Backoff


class Log(Protocol):
    """The part of a bound structlog logger the gate uses."""

    def warning(self, event: str, **fields: Any) -> Any: ...

    def info(self, event: str, **fields: Any) -> Any: ...


class ReconnectGate:
    """One target's connection attempts: `open()` before connecting (None: go ahead),
    `failed()` after a failure, `succeeded()` after a success."""

    def __init__(
        self,
        log: Log,
        *,
        failed_event: str,
        recovered_event: str,
        backoff: Backoff | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backoff = backoff
        """None: the next attempt may start at once (the login probe's rule)."""
        self._log = log
        self._failed_event, self._recovered_event = failed_event, recovered_event
        self._clock = clock
        self.failures = 0
        """Failed attempts in a row; 0 after a success."""
        self.reason = ""
        """Why the last attempt failed, one safe line."""
        self.saturated = False
        """The last attempt was refused because the server is full."""
        self._retry_at = 0.0

    @classmethod
    def connection(
        cls,
        source: str,
        log: Log,
        backoff: Backoff,
        clock: Callable[[], float] = time.monotonic,
    ) -> ReconnectGate:
        """The gate of a source's kept connection: `<source>_connect_failed` and
        `<source>_reconnected`, the same two names for every source."""
        return cls(
            log,
            failed_event=f"{source}_connect_failed",
            recovered_event=f"{source}_reconnected",
            backoff=backoff,
            clock=clock,
        )

    def wait(self) -> float:
        """Seconds until the next attempt may start; 0 when it may start now."""
        if not self.failures:
            return 0.0
        return max(0.0, self._retry_at - self._clock())

    def closed(self) -> str | None:
        """Why no attempt may start now (`reason; next attempt in N s`), or None."""
        wait = self.wait()
        return f"{self.reason}; next attempt in {wait:.1f}s" if wait > 0 else None

    def failed(self, reason: str, *, saturated: bool = False, **fields: Any) -> float:
        """Count a failure, schedule the next attempt and log it; returns the delay."""
        self.failures += 1
        self.reason, self.saturated = reason, saturated
        delay = self.backoff.delay(self.failures) if self.backoff is not None else 0.0
        self._retry_at = self._clock() + delay
        if self.backoff is not None:
            fields["retry_in_seconds"] = round(delay, 1)
        self._log.warning(
            self._failed_event, reason=reason, failures_in_a_row=self.failures, **fields
        )
        return delay

    def succeeded(self) -> None:
        """An attempt worked: logged once when it ends a run of failures."""
        if self.failures:
            self._log.info(self._recovered_event, after_failures=self.failures)
        self.forgive()

    def forgive(self) -> None:
        """Start afresh without a log line (the server answered another way, or a reload)."""
        self.failures, self.reason, self.saturated, self._retry_at = 0, "", False, 0.0
