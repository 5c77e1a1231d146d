"""PgBouncer's SHOW output → readings, pure: no I/O, so recorded output of any version can be
fed to it (tests/pgbouncer_source/data).

Columns are read by name, never by position: 1.18 to 1.24 add columns (`cl_active_cancel_req`,
`load_balance_hosts`, ...) and rename one (SHOW DATABASES `reserve_pool` → `reserve_pool_size`
in 1.24). The denominators are the ones PgBouncer itself compares against:
- `used_clients` (SHOW LISTS) against `max_client_conn`: exactly PgBouncer's own check.
  `free_clients`/`free_servers` are cached allocations, not free capacity, and are not used.
- a pool's servers against its effective size: `pool_size` + `reserve_pool_size` (the user's
  own from 1.23 when set, else the database's, else the defaults), capped by
  `max_db_connections` and `max_user_connections` when those are set (not 0). Caveat: SHOW
  USERS of 1.23 to 1.25 does not reset its buffer between rows, so a user without a pool size
  of its own, listed after one with, shows that one's (fixed after 1.25); that user's limit is
  then off, as PgBouncer's own output is.
- wait per transaction from deltas of `total_wait_time` / `total_xact_count` (SHOW STATS):
  `avg_wait_time` is wrong before 1.23.
PgBouncer's own admin database `pgbouncer` (poolwatch's connection among others) is left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from poolwatch.core.model import UP_CHECK, Reading
from poolwatch.sources.pgbouncer.readings import UNITS

SOURCE = "pgbouncer"
ADMIN_DATABASE = "pgbouncer"
MAX_LABEL_VALUES = 50
"""Per-pool and per-database readings: the busiest ones, the rest summed under `OTHER`."""
OTHER = "(other)"

Row = Mapping[str, Any]

COMMANDS = {
    "lists": "SHOW LISTS",
    "pools": "SHOW POOLS",
    "databases": "SHOW DATABASES",
    "users": "SHOW USERS",
    "config": "SHOW CONFIG",
    "stats": "SHOW STATS",
}
"""Every command a poll sends; `stats_users` may run all of them."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One poll's SHOW output: rows as column name → value, one sequence per command."""

    lists: Sequence[Row]
    pools: Sequence[Row]
    databases: Sequence[Row]
    users: Sequence[Row]
    config: Sequence[Row]
    stats: Sequence[Row]


Counters = dict[str, tuple[int, int]]
"""Per database: (`total_wait_time` in µs, `total_xact_count`), for the next poll's delta."""


def number(row: Row, *names: str) -> float | None:
    """The first of `names` the row has, as a number; None when absent or empty (SHOW USERS
    leaves a pool size unset as '')."""
    for name in names:
        value = row.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        try:
            return float(value)
        except (TypeError, ValueError):
            return None
    return None


def settings(snapshot: Snapshot) -> dict[str, str]:
    return {str(row["key"]): str(row.get("value") or "") for row in snapshot.config}


def _setting(config: Mapping[str, str], key: str) -> float | None:
    try:
        return float(config[key])
    except (KeyError, ValueError):
        return None


def _positive(value: float | None) -> float | None:
    """A limit PgBouncer writes as 0 when there is none."""
    return value if value is not None and value > 0 else None


@dataclass(frozen=True, slots=True)
class Pool:
    database: str
    user: str
    active: float
    waiting: float
    servers: float
    max_wait: float
    size: float | None
    """The effective pool size; None when unlimited."""

    @property
    def busy(self) -> float:
        return self.active + self.waiting + self.servers

    @property
    def saturated(self) -> bool:
        """All the servers it may have are taken, and clients still queue."""
        return self.size is not None and self.servers >= self.size and self.waiting > 0


def pools(snapshot: Snapshot) -> list[Pool]:
    config = settings(snapshot)
    databases = {str(row.get("name")): row for row in snapshot.databases}
    users = {str(row.get("name")): row for row in snapshot.users}
    found = []
    for row in snapshot.pools:
        database, user = str(row.get("database")), str(row.get("user"))
        if database == ADMIN_DATABASE:
            continue
        servers = sum(
            number(row, column) or 0.0
            for column in ("sv_active", "sv_idle", "sv_used", "sv_tested", "sv_login")
        )
        max_wait = (number(row, "maxwait") or 0.0) + (number(row, "maxwait_us") or 0.0) / 1e6
        found.append(
            Pool(
                database,
                user,
                number(row, "cl_active") or 0.0,
                number(row, "cl_waiting") or 0.0,
                servers,
                max_wait,
                _size(config, databases.get(database, {}), users.get(user, {})),
            )
        )
    return found


def _size(config: Mapping[str, str], database: Row, user: Row) -> float | None:
    """What PgBouncer lets one pool open: its pool size plus its reserve, capped."""
    size = number(user, "pool_size")  # 1.23+: a user's own, '' when unset
    if size is None:
        size = number(database, "pool_size")  # the database's, or default_pool_size
    if size is None:
        size = _setting(config, "default_pool_size")
    reserve = number(user, "reserve_pool_size")
    if reserve is None:
        reserve = number(database, "reserve_pool_size", "reserve_pool")  # renamed in 1.24
    if reserve is None:
        reserve = _setting(config, "reserve_pool_size")
    if not size:  # 0: no limit of its own
        return None
    caps = [
        _positive(number(database, "max_connections")),  # max_db_connections, resolved
        _positive(number(user, "max_user_connections")),  # 1.24, resolved
        _positive(_setting(config, "max_user_connections")),
    ]
    return min([size + (reserve or 0.0), *(cap for cap in caps if cap is not None)])


def bounded(found: Iterable[Pool]) -> list[Pool]:
    """The busiest pools, the rest summed into one `(other)` pool (its size summed too, when
    every one is known), so that label values stay bounded."""
    ranked = sorted(found, key=lambda p: (-p.busy, p.database, p.user))
    kept, rest = ranked[:MAX_LABEL_VALUES], ranked[MAX_LABEL_VALUES:]
    if not rest:
        return kept
    sizes = [p.size for p in rest]
    other = Pool(
        OTHER,
        OTHER,
        sum(p.active for p in rest),
        sum(p.waiting for p in rest),
        sum(p.servers for p in rest),
        max(p.max_wait for p in rest),
        None if None in sizes else sum(s or 0.0 for s in sizes),
    )
    return [*kept, other]


def counters(snapshot: Snapshot) -> Counters:
    found: Counters = {}
    for row in snapshot.stats:
        database = str(row.get("database"))
        wait, xacts = number(row, "total_wait_time"), number(row, "total_xact_count")
        if database != ADMIN_DATABASE and wait is not None and xacts is not None:
            found[database] = (int(wait), int(xacts))
    return found


def wait_per_transaction(
    before: Counters | None, now: Counters, databases: Iterable[str]
) -> dict[str, float]:
    """Seconds waited per transaction since the last poll, per database in `databases`
    (`OTHER` sums the rest). A database seen for the first time, or whose counters went down
    (PgBouncer restarted), is only a baseline; no transaction and no wait is 0."""
    if before is None:
        return {}
    shown = set(databases)
    sums: dict[str, list[int]] = {}
    for database, (wait, xacts) in now.items():
        previous = before.get(database)
        if previous is None or wait < previous[0] or xacts < previous[1]:
            continue
        name = database if database in shown else OTHER
        total = sums.setdefault(name, [0, 0])
        total[0] += wait - previous[0]
        total[1] += xacts - previous[1]
    out: dict[str, float] = {}
    for name, (waited, done) in sums.items():
        if done > 0:
            out[name] = waited / done / 1e6
        elif waited == 0:
            out[name] = 0.0
    return out


def _database_connections(snapshot: Snapshot) -> list[tuple[str, float, float | None]]:
    """(database, server connections, max_db_connections or None): busiest first, bounded."""
    rows = [
        (str(row.get("name")), number(row, "current_connections") or 0.0, row)
        for row in snapshot.databases
        if row.get("name") != ADMIN_DATABASE
    ]
    rows.sort(key=lambda item: (-item[1], item[0]))
    kept = [(name, n, _positive(number(row, "max_connections"))) for name, n, row in rows]
    if len(kept) <= MAX_LABEL_VALUES:
        return kept
    rest = sum(n for _, n, _ in kept[MAX_LABEL_VALUES:])
    return [*kept[:MAX_LABEL_VALUES], (OTHER, rest, None)]


EXHAUSTED_CHECK = "pool_exhausted"
EXHAUSTED_POOLS_NAMED = 3
"""Saturated pools a `pool_exhausted` message names (the rest are counted)."""


def exhausted(clients: float, max_client_conn: float | None, found: Sequence[Pool]) -> str | None:
    """Why PgBouncer has no room, or None: its clients reached `max_client_conn` (new clients
    are refused), or a pool holds every server it may open while clients queue for one."""
    reasons: list[str] = []
    if max_client_conn is not None and clients >= max_client_conn:
        reasons.append(
            f"{clients:.0f} clients of max_client_conn {max_client_conn:.0f}: new clients "
            "are refused"
        )
    saturated = sorted((p for p in found if p.saturated), key=lambda p: -p.waiting)
    if saturated:
        named = ", ".join(
            f"{p.database}/{p.user} {p.servers:.0f}/{p.size:.0f} servers, {p.waiting:.0f} waiting"
            for p in saturated[:EXHAUSTED_POOLS_NAMED]
        )
        more = len(saturated) - EXHAUSTED_POOLS_NAMED
        reasons.append(f"pool at its size with clients waiting: {named}")
        if more > 0:
            reasons[-1] += f" (and {more} more pools)"
    return "; ".join(reasons) or None


def readings(
    instance: str, snapshot: Snapshot, before: Counters | None
) -> tuple[list[Reading], Counters]:
    """Every reading of one poll, and the counters the next poll's deltas start from."""

    def reading(
        check: str,
        value: float,
        limit: float | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> Reading:
        return Reading(SOURCE, instance, check, value, UNITS[check], limit, labels or {})

    config = settings(snapshot)
    lists = {str(row.get("list")): number(row, "items") for row in snapshot.lists}
    clients = lists.get("used_clients") or 0.0
    max_client_conn = _positive(_setting(config, "max_client_conn"))
    found = pools(snapshot)
    full = exhausted(clients, max_client_conn, found)
    out = [
        reading(UP_CHECK, 1),
        replace(reading(EXHAUSTED_CHECK, 1.0 if full else 0.0), message=full),
        reading("client_connections", clients, max_client_conn),
    ]
    query_wait_timeout = _positive(_setting(config, "query_wait_timeout"))
    for pool in bounded(found):
        labels = {"database": pool.database, "user": pool.user}
        out += [
            reading("clients_waiting", pool.waiting, None, labels),
            reading("max_wait_seconds", pool.max_wait, query_wait_timeout, labels),
            reading("server_connections", pool.servers, pool.size, labels),
            reading("pool_saturated", 1.0 if pool.saturated else 0.0, None, labels),
        ]
    shown = _database_connections(snapshot)
    for database, connections, limit in shown:
        out.append(
            reading("database_server_connections", connections, limit, {"database": database})
        )
    now = counters(snapshot)
    waits = wait_per_transaction(before, now, (name for name, _, _ in shown))
    for database, seconds in sorted(waits.items()):
        out.append(reading("wait_per_transaction_seconds", seconds, None, {"database": database}))
    return out, now


def snapshot(tables: Mapping[str, Sequence[Row]]) -> Snapshot:
    """A Snapshot from rows per `COMMANDS` key; a command a version lacks is empty."""
    return Snapshot(**{key: tuple(tables.get(key, ())) for key in COMMANDS})


def servers(snapshot: Snapshot) -> list[tuple[str, int | None]]:
    """Where PgBouncer's databases connect (SHOW DATABASES `host`, `port`), once each: what
    it depends on. A database without a host (a unix socket) and the admin console are left
    out; a host list (`host=a,b`, PgBouncer 1.17+) gives one entry per host."""
    found: dict[tuple[str, int | None], None] = {}
    for row in snapshot.databases:
        if row.get("name") == ADMIN_DATABASE or not row.get("host"):
            continue
        port = number(row, "port")
        for host in str(row["host"]).split(","):
            if host.strip():
                found[(host.strip(), None if port is None else int(port))] = None
    return list(found)
