"""Redis source: clients against the server's own `maxclients`, memory, hit rate, rejections.

One collector per target holds **one** connection (named `poolwatch`), never a pool, so watching
never costs the server more than one client slot, and a second for the moment of a login probe
(`poolwatch.sources.login`, named `poolwatch-probe`): the kept connection cannot see that new
clients are refused. A lost connection is reopened at once, once;
after that, attempts wait a capped exponential backoff with jitter. When the server is full, the
connection poolwatch already holds keeps working and reports the true count; if that connection
was lost and the server refuses a new one with "max number of clients reached", the collector
reports the server as up and saturated (`connected_clients` = the limit) instead of down.

INFO fields map to readings through the table in `redis_info` (docs/sources/redis.md says
what each reading means; a test checks the two agree).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol, cast

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError

from poolwatch.config.fields import parent_nodes
from poolwatch.config.rules import Rules
from poolwatch.core.backoff import Backoff
from poolwatch.core.dependencies import Endpoint, Node
from poolwatch.core.evaluate import concerning, rule_for
from poolwatch.core.limits import LimitNote, limit_above_server
from poolwatch.core.model import UP_CHECK, Reading
from poolwatch.core.reasons import one_line
from poolwatch.logs import get_logger
from poolwatch.sources import SourceError
from poolwatch.sources.login import LoginProbe
from poolwatch.sources.reconnect import ReconnectGate
from poolwatch.sources.redis import login
from poolwatch.sources.redis.clients import clients_context
from poolwatch.sources.redis.info import (
    READINGS,
    UNITS,
    HitRate,
    Sample,
    parse_info,
    resolve_maxclients,
    server_maxclients,
)
from poolwatch.sources.redis.options import connection_options
from poolwatch.sources.redis.readings import EXHAUSTED_CHECK, HIT_RATE_CHECK
from poolwatch.sources.redis.replies import ReplyTooLargeError
from poolwatch.sources.redis.settings import RedisTarget

SOURCE = "redis"
CLIENTS_CHECK = "connected_clients"
SATURATION_ERROR = "max number of clients reached"
DEFAULT_PORT = 6379
RECONNECT_INITIAL, RECONNECT_MAX = 1.0, 30.0
"""Reconnect backoff: doubling from 1 s to 30 s, jittered so that many poolwatches spread out."""

# --- the connection -----------------------------------------------------------------------------


class _Wire(Protocol):
    """The part of redis-py's single `Connection` poolwatch uses (typed here; redis-py is not)."""

    @property
    def is_connected(self) -> bool: ...

    async def connect(self) -> None: ...

    async def disconnect(self, nowait: bool = False) -> None: ...

    async def send_command(self, *args: Any, **kwargs: Any) -> None: ...

    async def read_response(self) -> Any: ...


def address(options: Mapping[str, Any]) -> str:
    """Where a target is, without credentials: `host:port` or the socket path."""
    if "path" in options:
        return str(options["path"])
    return f"{options.get('host', 'localhost')}:{options.get('port', DEFAULT_PORT)}"


def endpoint(instance: str, options: Mapping[str, Any]) -> Endpoint:
    """Where a target connects, as redis-py reads its URL: host and port (redis-py's defaults
    `localhost`, 6379), or a unix socket's path (`unix://`), which has no port."""
    node = (SOURCE, instance)
    if "path" in options:
        return Endpoint(node, str(options["path"]), None)
    return Endpoint(
        node, str(options.get("host") or "localhost"), int(options.get("port") or DEFAULT_PORT)
    )


class _SaturatedError(Exception):
    """The server refuses new clients ("max number of clients reached"); `refused_now` when this
    poll's own attempt was refused, not only an earlier one still backing off."""

    def __init__(self, refused_now: bool) -> None:
        super().__init__(SATURATION_ERROR)
        self.refused_now = refused_now


class _RefusedError(SourceError):
    """The server answered a command with an error (unknown command, no permission)."""


class RedisCollector:
    """One Redis target: one connection, INFO every poll, readings from the `READINGS` table."""

    source = SOURCE
    intermittent_checks = frozenset({HIT_RATE_CHECK})
    """Absent while the window holds too few lookups: not gone, so it resolves by `clear_for`."""

    def __init__(
        self,
        target: RedisTarget,
        *,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.instance = target.name
        self.interval = target.interval
        self.timeout = target.timeout
        self.rules: Rules = target.rules
        self.configured_maxclients = target.max_clients
        self._clock = clock
        self._log = get_logger()
        # a lost connection is followed by a reconnect in the same poll: each gets half the time
        # the URL and its options were checked at load (`RedisTarget`, with `check_options`)
        self._class, self._options = connection_options(target, target.timeout / 2)
        self.where = address(self._options)
        self._endpoint = endpoint(self.instance, self._options)
        self.depends_on: tuple[Node, ...] = parent_nodes(target.depends_on)
        self._conn: _Wire | None = None
        self._retimed = False
        self._config_get = True
        self._config_get_hangs = False
        self._client_list = True
        """False once the ACL refused CLIENT LIST (logged once): no holders from then on."""
        self._before: Sample | None = None
        self.limit_notes: list[LimitNote] = []
        """Configured limits the server's own undercuts (`max_clients` above `maxclients`)."""
        self._hit_rate = HitRate(target.hit_rate_min_lookups, target.hit_rate_window)
        self.gate = ReconnectGate.connection(
            SOURCE,
            get_logger(source=SOURCE, instance=self.instance),
            backoff or Backoff(RECONNECT_INITIAL, RECONNECT_MAX),
            clock,
        )
        self.last_poll_partial = False
        """True while saturated: only the count is known, so nothing else counts as gone."""
        self.probe = LoginProbe(
            SOURCE,
            self.instance,
            lambda: login.attempt(self._class, self._options),
            interval=target.probe_interval,
            timeout=target.timeout,
            classify=login.failure_class,
            clock=clock,
            first_after=target.interval / 2,
        )

    # --- where it connects (`sources.Connects`) ---

    def endpoints(self) -> Sequence[Endpoint]:
        return (self._endpoint,)

    def backends(self) -> Sequence[Endpoint]:
        return ()

    # --- the poll ---

    async def collect(self) -> Sequence[Reading]:
        if self._retimed:
            self._retimed = False
            await self._drop()
        self.last_poll_partial = False
        try:
            info = await self._info()
        except _SaturatedError as exc:
            self.last_poll_partial = True
            return [*self._saturated_readings(refused_now=exc.refused_now), *self.probe.poll()]
        from_config = None if "maxclients" in info else await self.maxclients_from_config()
        server = server_maxclients(info, from_config)
        configured = self.configured_maxclients
        if server is not None:
            self.limit_notes = limit_above_server(
                SOURCE, self.instance, CLIENTS_CHECK, "max_clients", configured, server
            )
        now = Sample(info, resolve_maxclients(info, from_config, configured))
        readings = [self._reading(UP_CHECK, 1, None)]
        for spec in READINGS:
            measured = spec.measure(now, self._before)
            if measured is not None:
                readings.append(self._reading(spec.check, *measured))
        hit_rate = self._hit_rate.observe(now, self._before, self._clock())
        if hit_rate is not None:
            percent, lookups, polls = hit_rate
            over = f"over the last {lookups:.0f} lookups, {polls} poll{'s' * (polls != 1)}"
            readings.append(self._reading(HIT_RATE_CHECK, percent, 100.0, over))
        self._before = now
        exhausted = self._reading(EXHAUSTED_CHECK, 0, None)  # connected, and a slot is free
        for index, clients in enumerate(readings):
            if clients.check != CLIENTS_CHECK:
                continue
            full = server is not None and clients.value >= server
            readings[index] = clients = await self._with_holders(clients, full=full)
            if server is not None and full:
                exhausted = self._exhausted(clients, server)
        readings.insert(1, exhausted)
        return [*readings, *self.probe.poll()]

    async def close(self) -> None:
        await self.probe.close()
        await self._drop()

    def reconfigure(self, target: RedisTarget) -> None:
        """New rules, interval and timeout; a changed timeout reaches the socket timeouts by a
        reconnect at the next poll (redis-py fixes them per connection)."""
        self.rules, self.interval = target.rules, target.interval
        self.depends_on = parent_nodes(target.depends_on)
        self.probe.reconfigure(target.probe_interval, target.timeout)
        if target.timeout != self.timeout:
            self.timeout = target.timeout
            self._class, self._options = connection_options(target, target.timeout / 2)
            self._retimed = True

    def _reading(
        self, check: str, value: float, limit: float | None, message: str | None = None
    ) -> Reading:
        return Reading(SOURCE, self.instance, check, value, UNITS[check], limit, message=message)

    def _exhausted(self, clients: Reading, server: float) -> Reading:
        """Every slot taken while poolwatch is connected: the same alert a refused reconnect
        raises, for as long as the server stays full, with the holders of the slots."""
        message = (
            f"every client slot is taken: {clients.value:.0f} clients of maxclients "
            f"{server:.0f}; new clients get 'max number of clients reached'"
        )
        return replace(self._reading(EXHAUSTED_CHECK, 1, None, message), context=clients.context)

    def _saturated_readings(self, *, refused_now: bool) -> list[Reading]:
        """Server full and our own connection gone: it is up and refusing clients. No count is
        reported (the server gave none in this poll: an old limit would be invented); the
        refusal itself is the `pool_exhausted` reading."""
        said = f"new connection refused with '{SATURATION_ERROR}'"
        readings = [
            self._reading(UP_CHECK, 1, None, f"answers, but {said}"),
            self._reading(EXHAUSTED_CHECK, 1, None, f"every client slot is taken: {said}"),
        ]
        if refused_now:
            readings.append(
                self._reading("rejected_connections", 1, None, "at least poolwatch's own reconnect")
            )
        return readings

    async def _with_holders(self, reading: Reading, *, full: bool) -> Reading:
        """`connected_clients` with who holds the slots, read only while its rule is at or above
        warning or the server is full (CLIENT LIST is O(clients)). No answer costs the context,
        never the count."""
        if not self._client_list:
            return reading
        if not full and not concerning(reading, rule_for(self.rules, reading)):
            return reading
        try:
            listing = await self._command("CLIENT", "LIST")
        except _RefusedError as exc:
            self._client_list = False
            self._log.warning(
                "redis_client_list_unavailable",
                instance=self.instance,
                reason=str(exc),
                effect="no holders in connected_clients alerts; grant +client|list",
            )
            return reading
        except (RedisConnectionError, SourceError, TimeoutError) as exc:
            # INFO answered, so the server is up: the next poll reconnects if it must
            self.gate.forgive()
            self._log.warning("redis_client_list_failed", instance=self.instance, reason=str(exc))
            return reading
        return replace(reading, context=clients_context(str(listing)))

    # --- talking to the server ---

    async def _info(self) -> dict[str, str]:
        """INFO over the held connection; reopened at once, once, when it was lost in between."""
        fresh = self._conn is None
        if fresh:
            await self._open()
        try:
            return parse_info(await self._command("INFO"))
        except RedisConnectionError as exc:
            if fresh:
                raise self._failed(exc) from None
        # the connection we held is gone (server restarted, CLIENT KILL): try a new one now
        await self._open()
        try:
            return parse_info(await self._command("INFO"))
        except RedisConnectionError as exc:
            raise self._failed(exc) from None

    async def _command(self, *args: str) -> Any:
        """One command and its answer; any failure but a refusal of the command drops the
        connection (a half-read answer must never be read as the next one)."""
        conn = self._conn
        if conn is None or not conn.is_connected:
            await self._drop()
            raise RedisConnectionError("connection lost")
        try:
            await conn.send_command(*args)
            return await conn.read_response()
        except ResponseError as exc:
            raise _RefusedError(f"{self.where}: {args[0]} refused: {one_line(exc)}") from None
        except ReplyTooLargeError as exc:
            await self._drop()
            raise self._failed(ReplyTooLargeError(f"{' '.join(args)}: {exc}")) from None
        except RedisError as exc:
            await self._drop()
            if isinstance(exc, RedisConnectionError):
                raise
            raise self._failed(exc) from None
        except BaseException:
            await self._drop()
            raise

    async def maxclients_from_config(self) -> float | None:
        """`CONFIG GET maxclients` on the held connection (asked only when INFO lacks the limit).
        Managed servers disable, rename or deny CONFIG: that is an answer (None, logged once and
        not asked again on this connection), never an error. None when not connected."""
        if self._conn is None or not self._config_get or self._config_get_hangs:
            return None
        try:
            answer = await self._command("CONFIG", "GET", "maxclients")
        except _RefusedError as exc:
            self._config_get = False
            self._log.info("redis_config_get_unavailable", instance=self.instance, reason=str(exc))
            return None
        except (RedisConnectionError, SourceError, TimeoutError) as exc:
            # INFO got through, so the server is up: a CONFIG GET that hangs or breaks (a proxy
            # that never answers it) costs the limit, never an `up` 0; not asked again on the
            # next connection either
            self._config_get_hangs = True  # unlike a refusal, not asked on later connections
            self.gate.forgive()  # the server is fine: no reconnect backoff
            self._log.warning(
                "redis_config_get_unavailable", instance=self.instance, reason=one_line(exc)
            )
            return None
        values = list(answer.values()) if isinstance(answer, dict) else list(answer or [])[1::2]
        try:
            return float(values[0])
        except (IndexError, TypeError, ValueError):
            return None

    async def _open(self) -> None:
        """Open the one connection, unless the backoff after earlier failures says not yet."""
        closed = self.gate.closed()
        if closed is not None:
            if self.gate.saturated:
                raise _SaturatedError(False)
            raise SourceError(closed)
        conn = cast(_Wire, self._class(**self._options))
        started = self._clock()
        try:
            await conn.connect()
        except RedisError as exc:
            await _quietly_disconnect(conn)
            raise self._failed(exc) from None
        except BaseException:
            await _quietly_disconnect(conn)
            raise
        self._conn, self._config_get = conn, True
        self.probe.succeeded(self._clock() - started)  # a fresh login, as the probe's
        self.gate.succeeded()

    def _failed(self, exc: BaseException) -> Exception:
        """Count a failure, schedule the next attempt, and say what happened, safely."""
        reason = one_line(exc)
        saturated = SATURATION_ERROR in reason
        where = "" if self.where in reason else f"{self.where}: "
        self.gate.failed(f"{where}{reason}", saturated=saturated)
        return _SaturatedError(True) if saturated else SourceError(self.gate.reason)

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await _quietly_disconnect(conn)


async def _quietly_disconnect(conn: _Wire) -> None:
    """Close without waiting on a peer that may be gone; closing cannot fail a poll."""
    with contextlib.suppress(RedisError, OSError):
        await conn.disconnect(nowait=True)
