"""PostgreSQL's rows → readings, pure: what one poll's CORE, NAMES, DEADLOCKS and SIZES rows
(queries.py) say, given the previous poll's counters. The collector (collector.py) keeps the
connection and the order of the reads; this module keeps what the rows mean, so that it can be
tested against recorded rows (tests/postgres/data/) without a server, as PgBouncer's show.py
and Redis's info.py are.

A row is anything indexed by column name: an asyncpg Record, or a dict in the tests.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from poolwatch.core.limits import LimitNote, effective_limit, limit_above_server
from poolwatch.core.model import Reading
from poolwatch.sources.postgres import sessions
from poolwatch.sources.postgres.queries import raw_text

SOURCE = "postgres"

Row = Mapping[str, Any]

STATES = {
    "active": "active",
    "idle": "idle",
    "idle in transaction": "idle_in_transaction",
    "idle in transaction (aborted)": "idle_in_transaction_aborted",
    "fastpath function call": "fastpath_function_call",
    "disabled": "disabled",
    "": "unknown",  # a row whose state the monitor role may not see (no pg_monitor)
}
MAX_LABEL_VALUES = 20
"""Per-database, -user, -application and -client readings: the busiest ones, the rest summed
under `OTHER`."""
OTHER = "(other)"
UNNAMED = "(none)"
"""The `application` label of sessions that set no application_name."""

Counters = dict[int, tuple[int, str | None]]
"""Deadlock counters per database oid, with that database's `stats_reset` time."""


def deadlock_delta(previous: Counters | None, current: Counters) -> int | None:
    """Deadlocks since the last poll, summed over databases; None on the first poll (the
    rule for every `pg_stat_database` counter: `sessions.counter_delta`)."""
    return sessions.counter_delta(previous, current)


def label_value(name: str) -> str:
    """A database or role name as a label value, never equal to the overflow bucket: a name
    that starts with `(` or `\\` (a database literally called `(other)`) gets a `\\` in front."""
    return "\\" + name if name.startswith(("(", "\\")) else name


def bounded(counts: Mapping[str, int]) -> dict[str, int]:
    """The busiest label values, the rest summed under `OTHER`; names come escaped
    (`label_value`), so only poolwatch's own placeholders start with `(`."""
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    kept = dict(ranked[:MAX_LABEL_VALUES])
    rest = sum(n for _, n in ranked[MAX_LABEL_VALUES:])
    if rest:
        kept[OTHER] = kept.get(OTHER, 0) + rest
    return kept


def reading(
    instance: str,
    check: str,
    value: float,
    unit: str,
    limit: float | None = None,
    labels: Mapping[str, str] | None = None,
    message: str | None = None,
) -> Reading:
    return Reading(SOURCE, instance, check, value, unit, limit, labels or {}, message)


@dataclass
class Counts:
    """What the lock-free CORE row says."""

    readings: list[Reading]
    server_limit: float
    """The server's usable slots: max_connections less both reserves."""
    limit: float | None
    """The limit readings carry: the server's, or a smaller configured one."""
    notes: list[LimitNote]
    """A configured limit above the server's own (said, never used)."""
    exhausted: str | None
    """Why no slot is left for an ordinary role, when the count reached the server's limit."""
    databases: dict[int, int] = field(default_factory=dict)
    """Client connections per database oid (named by the NAMES row)."""
    users: dict[int, int] = field(default_factory=dict)
    """... and per role oid."""


def counts(instance: str, row: Row, limit_override: float | None) -> Counts:
    """The lock-free readings, and the counts per database and role oid for `by_name`."""
    usable = row["max_connections"] - row["superuser_reserved"] - row["reserved"]
    server_limit = float(max(1, usable))
    # the seed's POSTGRES_CONN_MAX=200 names the server's max_connections (200, of which
    # 197 are usable): said only when it is above even that
    notes = limit_above_server(
        SOURCE, instance, "connections", "max_connections", limit_override, row["max_connections"]
    )
    exhausted = full_message(row) if row["connections"] >= server_limit else None
    limit = effective_limit(limit_override, server_limit)
    out = [
        reading(instance, "connections", row["connections"], "connections", limit),
        reading(instance, "connections_waiting_on_locks", row["waiting"], "connections", limit),
    ]
    states = dict.fromkeys(STATES.values(), 0)
    for state, count in json.loads(row["by_state"]).items():
        states[STATES.get(state, "unknown")] += count
    for name, count in states.items():
        labels = {"state": name}
        out.append(reading(instance, "connections_by_state", count, "connections", limit, labels))
    for check, column in (
        ("longest_query_seconds", "longest_query"),
        ("oldest_transaction_seconds", "oldest_transaction"),
        ("idle_in_transaction_seconds", "idle_in_transaction"),
    ):
        out.append(reading(instance, check, max(0.0, row[column]), "seconds"))
    for check, column, label in (
        ("connections_by_application", "by_application", "application"),
        ("connections_by_client", "by_client", "client"),
    ):
        tally: Counter[str] = Counter()
        for name, n in json.loads(row[column]).items():
            tally[label_value(name) if name else UNNAMED] += n
        for name, count in bounded(tally).items():
            out.append(reading(instance, check, count, "connections", limit, {label: name}))
    databases = {int(oid): n for oid, n in json.loads(row["by_database"]).items()}
    users = {int(oid): n for oid, n in json.loads(row["by_user"]).items()}
    return Counts(out, server_limit, limit, notes, exhausted, databases, users)


def by_name(instance: str, row: Row, counted: Counts) -> tuple[list[Reading], dict[int, str]]:
    """The per-database and per-user readings, named by the NAMES row; and the role names by
    oid (the holders' context names them)."""
    out: list[Reading] = []
    users: dict[int, str] = {}
    for label, tally, column, check in (
        ("database", counted.databases, "databases", "connections_by_database"),
        ("user", counted.users, "users", "connections_by_user"),
    ):
        # each name decoded on its own: one that is not UTF-8 reads with U+FFFD in it
        names = {oid: raw_text(raw) or "" for oid, raw in json.loads(row[column]).items()}
        if label == "user":
            users = {int(oid): name for oid, name in names.items()}
        named: Counter[str] = Counter()
        for oid, count in tally.items():
            named[label_value(names.get(str(oid), ""))] += count  # "": dropped since
        for name, count in bounded(named).items():
            labels = {label: name}
            out.append(reading(instance, check, count, "connections", counted.limit, labels))
    return out, users


@dataclass
class Grown:
    """What the DEADLOCKS row says against the previous poll's counters."""

    readings: list[Reading]
    deadlocks: Counters
    """The new deadlock baseline (kept by the collector only if the whole poll succeeds)."""
    sessions: dict[str, Counters]
    """The new baseline of the session counters, likewise."""


def deadlocks(
    instance: str,
    row: Row,
    started: str,
    previous: Counters | None,
    previous_sessions: dict[str, Counters] | None,
) -> Grown:
    """Deadlocks and session counters since the last poll; nothing on the first poll.
    `started` is the server's start time: a restart resets every counter."""
    counters: Counters = {
        int(oid): (int(count), f"{reset}|{started}")
        for oid, count, reset in json.loads(row["deadlocks"])
    }
    out: list[Reading] = []
    delta = deadlock_delta(previous, counters)
    if delta is not None:
        out.append(reading(instance, "deadlocks", delta, "deadlocks"))
    now = sessions.session_counters(row["sessions"], started)
    for check, grown in sessions.session_deltas(previous_sessions, now).items():
        out.append(reading(instance, check, grown, sessions.UNIT))
    return Grown(out, counters, now)


def sizes(instance: str, row: Row) -> tuple[list[Reading], list[str]]:
    """Each database's size; and why a database has none (one reason each, for `unread`)."""
    out: list[Reading] = []
    unread: list[str] = []
    seen: set[str] = set()
    for raw, size in json.loads(row["sizes"]):
        name = raw_text(raw) or ""  # decoded on its own: a bad name costs only its row
        if size is None:  # its files are gone, its row not yet: a DROP DATABASE under way
            unread.append(f"size of database {name!r}: none (being dropped?)")
            continue
        labels = {"database": label_value(name)}
        if labels["database"] in seen:
            continue  # two names that are not UTF-8 and read alike: the larger one is kept
        seen.add(labels["database"])
        out.append(reading(instance, "database_size_bytes", size, "bytes", None, labels))
    return out, unread


def full_message(row: Row) -> str:
    """Why no ordinary role can log in, in the server's own numbers."""
    reserved = row["superuser_reserved"] + row["reserved"]
    usable = row["max_connections"] - reserved
    return (
        f"no slot left for an ordinary role: {row['connections']} client connections of "
        f"{usable} usable (max_connections {row['max_connections']}, {reserved} reserved); "
        "new logins get 'remaining connection slots are reserved'"
    )
