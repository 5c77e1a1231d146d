"""A login probe beside a source's persistent session: a fresh connection, opened as an
application opens one (connect, authenticate, one trivial round trip, close), so that poolwatch
sees what its kept session cannot: that nobody else can log in (a hung postmaster, a changed
password, slots taken by sessions stuck in the handshake, a pooler with no server behind it).

The scheduling rules, each a promise of docs/sources/postgres.md ("When logins fail"):
- At most one attempt per target is in flight. `poll()` is synchronous: called from the
  collector's `collect()`, it starts an attempt when one is due and reports the last attempt that
  *completed*, so a login that hangs never delays a poll.
- Every attempt runs under its own timeout (the target's `timeout`).
- After a success the next attempt is due `interval` after this one started, and the poll that
  comes within `EARLY` of that takes it (polls and probes keep step: a probe due at 30.004 s must
  not slip to the poll after the one at 30.001 s); after a failure it is due at once, i.e. at the
  next poll, so one failure is confirmed (or cleared) a poll later.
- `login_ok` reads 0 only after `CONFIRMATIONS` failed attempts in a row, else 1; its message
  names the class of the last failure (`failure_class`). `login_seconds` is how long the last
  completed attempt took, against the timeout as its limit.
- Nothing is reported before the first attempt completes, and the first is not made before
  `first_after` (the second poll). A login the collector made itself (its persistent session's
  connect) counts as a successful attempt (`succeeded`): it is the same login, so it costs no
  second connection, and `--once` (one poll) reports `login_ok` from it.

Pure scheduling over an injected clock and an injected attempt; each source supplies the attempt
and its driver's failure classes (`sources/<name>/login.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from poolwatch.core.model import Reading
from poolwatch.core.reasons import one_line
from poolwatch.logs import get_logger
from poolwatch.sources.reconnect import ReconnectGate

LOGIN_OK = "login_ok"
LOGIN_SECONDS = "login_seconds"
LOGIN_UNITS = {LOGIN_OK: "bool", LOGIN_SECONDS: "seconds"}
LOGIN_CHECKS = tuple(LOGIN_UNITS)

CONFIRMATIONS = 2
"""Failed attempts in a row before `login_ok` reads 0 (the alert fires): one is a blip."""
EARLY = 0.1
"""The share of `interval` a probe may start early: more than a poll's jitter, little enough that
probes stay about `interval` apart."""
CLOSE_TIMEOUT = 1.0
"""Seconds `close()` waits for a cancelled attempt to let go of its socket (within the runner's
own bound on a collector's close)."""

# the classes of failure a message names
TIMED_OUT = "timed out"
FULL = "refused because full"
AUTH = "authentication rejected"
TLS = "TLS failed"
NAME = "name resolution failed"
REFUSED = "connection refused"

Attempt = Callable[[], Awaitable[None]]
"""One login: connect, authenticate, one round trip, close; raises on any failure."""
Classify = Callable[[BaseException], str | None]
"""A driver's own failure classes (SQLSTATE, server replies); None when it cannot tell."""
Explain = Callable[[BaseException], str]
"""The driver's reason as one safe line (`one_line`, perhaps with the SQLSTATE)."""

_TEXT_CLASSES = (
    (TLS, ("SSL", "TLS", "certificate")),
    (NAME, ("Name or service not known", "name resolution", "nodename nor servname",
            "could not translate host name", "failed to resolve host", "No address associated")),
    (REFUSED, ("Connection refused", "connection refused", f"[Errno {errno.ECONNREFUSED}]")),
)  # fmt: skip
"""What the C library and OpenSSL say, as drivers that wrap every error (psycopg, redis-py)
pass it on in their text; asyncio's "Multiple exceptions: [Errno 111] Connect call failed" when
every address of a name refused."""


def failure_class(exc: BaseException) -> str | None:
    """The class of a failure the driver does not know better: by exception type, then by the
    operating system's and OpenSSL's words in the driver's text."""
    if isinstance(exc, TimeoutError):
        return TIMED_OUT
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return TLS
    if isinstance(exc, socket.gaierror):
        return NAME
    if isinstance(exc, ConnectionRefusedError):
        return REFUSED
    text = str(exc)
    for kind, phrases in _TEXT_CLASSES:
        if any(phrase in text for phrase in phrases):
            return kind
    return None


def _no_class(_exc: BaseException) -> str | None:
    return None


@dataclass(frozen=True, slots=True)
class Outcome:
    """One completed attempt."""

    ok: bool
    seconds: float
    reason: str = ""
    """Why it failed, one safe line starting with the class of failure when one is known."""


class LoginProbe:
    """The login probe of one target; `poll()` from `collect()`, `close()` from `close()`."""

    def __init__(
        self,
        source: str,
        instance: str,
        attempt: Attempt,
        *,
        interval: float | None,
        timeout: float,
        classify: Classify = _no_class,
        explain: Explain = one_line,
        clock: Callable[[], float] = time.monotonic,
        first_after: float = 0.0,
    ) -> None:
        self.source, self.instance = source, instance
        self.interval = interval
        """Seconds between successful attempts; None: the probe is off."""
        self.timeout = timeout
        self._attempt = attempt
        self._classify = classify
        self._explain = explain
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self._last: Outcome | None = None
        self._started = 0.0
        self._due = clock() + first_after
        """When the next attempt may start; the first `first_after` from now (collectors pass
        half their poll interval: the first probe comes with the second poll, so `--once`, one
        poll, opens no probe that its close would cancel at once)."""
        self.started = 0
        """Attempts started (for tests and the benchmark)."""
        self.completed = 0
        """Attempts completed, either way."""
        self._gate = ReconnectGate(
            get_logger(source=source, instance=instance),
            failed_event="login_probe_failed",
            recovered_event="login_probe_recovered",
            backoff=None,  # a failure is confirmed (or cleared) at the next poll
            clock=clock,
        )

    @property
    def in_flight(self) -> bool:
        return self._task is not None and not self._task.done()

    # --- what the collector calls -------------------------------------------------------------

    def poll(self) -> list[Reading]:
        """The last completed attempt's readings; starts the next attempt when it is due."""
        if self.interval is None:
            return []
        if not self.in_flight and self._clock() >= self._due:
            self._started = self._clock()
            self.started += 1
            self._task = asyncio.get_running_loop().create_task(
                self._run(self._started), name=f"{self.source}:{self.instance}:login"
            )
        return self.readings()

    def succeeded(self, seconds: float) -> None:
        """A login the collector made itself (its persistent session's connect) worked."""
        if self.interval is None:
            return
        self._started = self._clock() - seconds
        self._record(Outcome(True, seconds))

    def reconfigure(self, interval: float | None, timeout: float) -> None:
        """A reload's `probe_interval` and `timeout`, from the next attempt; `off` cancels one
        in flight (close() still waits for it)."""
        if interval is None:
            if self._task is not None:
                self._task.cancel()
            self._gate.forgive()
            self._last = None  # when on again, report only what it then sees
        if interval is not None and self._gate.failures == 0:
            self._due = self._next(interval) if self._last is not None else 0.0
        self.interval, self.timeout = interval, timeout

    async def settled(self) -> None:
        """Wait until the attempt in flight, if any, has ended (tests and the benchmark; the
        poll never waits for an attempt)."""
        if self._task is not None:
            await asyncio.wait({self._task})

    async def close(self) -> None:
        """Cancel the attempt in flight and wait (bounded) until it has let go of its socket."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(BaseException):
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await asyncio.gather(task, return_exceptions=True)

    def readings(self) -> list[Reading]:
        last = self._last
        if last is None or self.interval is None:
            return []
        failures = self._gate.failures
        confirmed = failures >= CONFIRMATIONS
        message = None
        if confirmed:
            message = f"a new login failed {failures} times in a row: {last.reason}"
        elif failures:
            message = f"a new login failed once, to be confirmed at the next poll: {last.reason}"
        ok = Reading(
            self.source, self.instance, LOGIN_OK, 0 if confirmed else 1, "bool", message=message
        )
        seconds = Reading(
            self.source, self.instance, LOGIN_SECONDS, last.seconds, "seconds", self.timeout
        )
        return [ok, seconds]

    # --- one attempt --------------------------------------------------------------------------

    async def _run(self, started: float) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                await self._attempt()
        except Exception as exc:
            self._record(Outcome(False, self._clock() - started, self._describe(exc)))
        else:
            self._record(Outcome(True, self._clock() - started))

    def _describe(self, exc: BaseException) -> str:
        kind = self._classify(exc) or failure_class(exc)
        timed_out = isinstance(exc, TimeoutError)
        detail = one_line(exc, timeout=self.timeout) if timed_out else self._explain(exc)
        return f"{kind}: {detail}" if kind else detail

    def _next(self, interval: float) -> float:
        return self._started + interval * (1 - EARLY)

    def _record(self, outcome: Outcome) -> None:
        self.completed += 1
        self._last = outcome
        if outcome.ok:
            self._gate.succeeded()
            self._due = self._next(self.interval or 0.0)
            return
        self._gate.failed(outcome.reason, seconds=round(outcome.seconds, 3))
        self._due = 0.0  # confirm at the next poll
