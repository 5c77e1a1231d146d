"""The login probe's scheduling (poolwatch.sources.login), edge by edge, with the clock injected.

The attempts here are small in-test coroutines, not mocks of a server: the scheduler's contract is
with "an attempt that succeeds, fails or hangs", and these make each exact. The real attempts
against real servers are tested in tests/postgres, tests/redis_source and tests/pgbouncer_source.
"""

from __future__ import annotations

import asyncio
import socket
import ssl

import asyncpg
import pytest
import redis.exceptions

from poolwatch.sources.login import (
    AUTH,
    FULL,
    NAME,
    REFUSED,
    TIMED_OUT,
    TLS,
    LoginProbe,
    failure_class,
)
from poolwatch.sources.postgres import login as postgres_login
from poolwatch.sources.redis import login as redis_login

INTERVAL = 30.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Script:
    """Attempts that do what the test says: each waits for its turn, then fails or not."""

    def __init__(self) -> None:
        self.cancelled = 0
        self.release = asyncio.Event()
        self.error: Exception | None = None

    async def __call__(self) -> None:
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        self.release.clear()
        if self.error is not None:
            raise self.error

    async def finish(self, probe: LoginProbe, error: Exception | None = None) -> None:
        """Let the attempt in flight complete (failing with `error`), and wait until it has."""
        self.error = error
        done = probe.completed
        self.release.set()
        await settled(probe)
        assert probe.completed == done + 1


async def settled(probe: LoginProbe) -> None:
    async with asyncio.timeout(5):
        await probe.settled()


def probe_with(script: Script, clock: Clock, timeout: float = 5.0) -> LoginProbe:
    return LoginProbe(
        "postgres",
        "main",
        script,
        interval=INTERVAL,
        timeout=timeout,
        classify=postgres_login.failure_class,
        explain=postgres_login.explain,
        clock=clock,
    )


def values(probe: LoginProbe) -> dict[str, float]:
    return {r.check: r.value for r in probe.poll()}


async def test_nothing_before_the_first_attempt_completes_and_one_in_flight_only() -> None:
    script, clock = Script(), Clock()
    probe = probe_with(script, clock)
    try:
        for _ in range(5):  # polls while the attempt hangs: none waits, none starts another
            assert probe.poll() == []
            clock.now += 2 * INTERVAL
            await asyncio.sleep(0)
        assert probe.started == 1
        assert probe.in_flight
        await script.finish(probe)
        assert values(probe) == {"login_ok": 1, "login_seconds": 10 * INTERVAL}
        assert probe.started == 2  # it was long due: the next one started with that poll
    finally:
        await probe.close()


async def test_a_success_makes_the_next_attempt_due_an_interval_after_it_started() -> None:
    script, clock = Script(), Clock()
    probe = probe_with(script, clock)
    try:
        probe.poll()
        clock.now += 1.5
        await script.finish(probe)
        reading = {r.check: r for r in probe.poll()}
        assert reading["login_seconds"].value == 1.5
        assert reading["login_seconds"].limit == 5.0  # the timeout
        assert reading["login_ok"].message is None
        # due after the interval, taken by a poll up to a tenth of it early (a poll's jitter)
        clock.now += 0.9 * INTERVAL - 1.5 - 0.01
        probe.poll()
        assert probe.started == 1
        clock.now += 0.01
        probe.poll()
        assert probe.started == 2
    finally:
        await probe.close()


async def test_probes_keep_step_with_polls_that_jitter() -> None:
    """Polls every 10 s, each reaching the probe a little sooner than the one before (a quicker
    poll): a probe every 30 s still starts every third poll, never slipping to the fourth."""
    script, clock = Script(), Clock()
    probe = probe_with(script, clock)
    starts = []
    try:
        for poll in range(10):
            clock.now = 1000.0 + 10 * poll + 0.01 - 0.001 * poll
            before = probe.started
            probe.poll()
            if probe.started > before:
                starts.append(poll)
                await script.finish(probe)
        assert starts == [0, 3, 6, 9]
    finally:
        await probe.close()


async def test_one_failure_is_confirmed_at_the_next_poll_and_two_read_zero() -> None:
    script, clock = Script(), Clock()
    probe = probe_with(script, clock)
    full = asyncpg.TooManyConnectionsError("sorry, too many clients already")
    try:
        probe.poll()
        await script.finish(probe)
        probe.poll()

        clock.now += INTERVAL
        probe.poll()  # the first failing attempt
        await script.finish(probe, full)
        first = {r.check: r for r in probe.poll()}  # no clock change: due at once
        assert first["login_ok"].value == 1  # one failure is not yet an alert
        assert "failed once, to be confirmed at the next poll" in (first["login_ok"].message or "")
        assert probe.started == 3

        await script.finish(probe, full)
        second = {r.check: r for r in probe.poll()}
        assert second["login_ok"].value == 0
        message = second["login_ok"].message or ""
        assert message == (
            "a new login failed 2 times in a row: refused because full: "
            "sorry, too many clients already (SQLSTATE 53300)"
        )
        assert probe.started == 4  # still failing: tried again at every poll

        await script.finish(probe)
        assert values(probe)["login_ok"] == 1
    finally:
        await probe.close()


async def test_a_success_between_failures_starts_the_count_again() -> None:
    script, clock = Script(), Clock()
    probe = probe_with(script, clock)
    refused = ConnectionRefusedError(111, "Connection refused")
    try:
        probe.poll()
        await script.finish(probe, refused)
        probe.poll()
        await script.finish(probe)
        clock.now += INTERVAL
        probe.poll()
        await script.finish(probe, refused)
        assert values(probe)["login_ok"] == 1
    finally:
        await probe.close()


async def test_each_attempt_has_its_own_timeout() -> None:
    script, clock = Script(), Clock()
    probe = probe_with(script, clock, timeout=0.05)
    try:
        probe.poll()  # never released: the timeout ends it
        await settled(probe)
        probe.poll()
        await settled(probe)
        assert probe.completed == 2
        reading = {r.check: r for r in probe.poll()}
        assert reading["login_ok"].value == 0
        assert reading["login_ok"].message == (
            "a new login failed 2 times in a row: timed out: no answer within 0.05s"
        )
        assert script.cancelled == 2
    finally:
        await probe.close()


async def test_close_cancels_the_attempt_in_flight() -> None:
    script, clock = Script(), Clock()
    probe = probe_with(script, clock)
    probe.poll()
    await asyncio.sleep(0)
    assert probe.in_flight
    await probe.close()
    assert script.cancelled == 1
    assert not probe.in_flight
    assert probe.completed == 0  # a cancelled attempt is no outcome


async def test_the_collectors_own_login_counts_and_defers_the_first_probe() -> None:
    script, clock = Script(), Clock()
    probe = probe_with(script, clock)
    try:
        probe.succeeded(0.25)
        assert values(probe) == {"login_ok": 1, "login_seconds": 0.25}
        assert probe.started == 0  # `--once`: one poll, no probe to cancel
        clock.now += INTERVAL
        probe.poll()
        assert probe.started == 1
    finally:
        await probe.close()


async def test_off_reports_nothing_and_a_reload_turns_it_off_and_on() -> None:
    script, clock = Script(), Clock()
    off = LoginProbe("redis", "main", script, interval=None, timeout=5.0, clock=clock)
    off.succeeded(0.1)
    assert off.poll() == []
    assert off.started == 0

    probe = probe_with(script, clock)
    try:
        probe.poll()
        await asyncio.sleep(0)
        probe.reconfigure(None, 5.0)  # off: the attempt in flight is cancelled
        await settled(probe)
        assert script.cancelled == 1
        assert probe.poll() == []
        probe.reconfigure(10.0, 2.0)
        probe.poll()
        assert probe.started == 2
        await script.finish(probe)
        reading = {r.check: r for r in probe.poll()}
        assert reading["login_seconds"].limit == 2.0
        clock.now += 10.0
        probe.poll()
        assert probe.started == 3
    finally:
        await probe.close()


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (TimeoutError(), TIMED_OUT),
        (ConnectionRefusedError(111, "Connection refused"), REFUSED),
        (socket.gaierror(-2, "Name or service not known"), NAME),
        (ssl.SSLCertVerificationError("certificate verify failed"), TLS),
        (OSError("connection failed: ... failed: Connection refused"), REFUSED),
        (OSError("Multiple exceptions: [Errno 111] Connect call failed ('::1', 5432)"), REFUSED),
        (OSError('failed to resolve host "db": [Errno -2] Name or service not known'), NAME),
        (OSError("SSL error: unexpected eof while reading"), TLS),
        (RuntimeError("something else"), None),
    ],
)
def test_generic_failure_classes(error: Exception, kind: str | None) -> None:
    assert failure_class(error) == kind


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (asyncpg.TooManyConnectionsError("sorry, too many clients already"), FULL),
        (asyncpg.InvalidPasswordError("password authentication failed for user"), AUTH),
        (asyncpg.InvalidAuthorizationSpecificationError("pg_hba.conf rejects connection"), AUTH),
        # psycopg's connect errors carry the server's words, not always the SQLSTATE
        (OSError('FATAL:  password authentication failed for user "app"'), AUTH),
        (OSError('FATAL:  no pg_hba.conf entry for host "10.0.0.1"'), AUTH),
        (OSError("FATAL:  no more connections allowed (max_client_conn)"), FULL),
        (OSError("FATAL:  remaining connection slots are reserved for ..."), FULL),
        (asyncpg.CannotConnectNowError("the database system is starting up"), None),
    ],
)
def test_postgres_failure_classes(error: Exception, kind: str | None) -> None:
    assert postgres_login.failure_class(error) == kind


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (redis.exceptions.ConnectionError("max number of clients reached"), FULL),
        (redis.exceptions.AuthenticationError("invalid username-password pair"), AUTH),
        (redis.exceptions.ResponseError("WRONGPASS invalid username-password pair"), AUTH),
        (redis.exceptions.ResponseError("NOAUTH Authentication required."), AUTH),
        (redis.exceptions.TimeoutError("Timeout reading from 127.0.0.1:6379"), TIMED_OUT),
        (redis.exceptions.ResponseError("NOPERM this user has no permissions"), None),
    ],
)
def test_redis_failure_classes(error: Exception, kind: str | None) -> None:
    assert redis_login.failure_class(error) == kind


async def test_the_first_probe_waits_for_the_second_poll() -> None:
    """`first_after` half a poll interval: `--once` (one poll, then close) starts no probe."""
    script, clock = Script(), Clock()
    probe = LoginProbe(
        "pgbouncer", "main", script, interval=INTERVAL, timeout=5.0, clock=clock, first_after=5.0
    )
    try:
        assert probe.poll() == []
        assert probe.started == 0
        clock.now += 10.0  # the second poll
        probe.poll()
        assert probe.started == 1
    finally:
        await probe.close()
