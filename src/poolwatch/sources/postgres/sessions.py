"""Sessions that ended badly, from `pg_stat_database` (PostgreSQL 14+): pure, no I/O.

`sessions_fatal` (ended by a FATAL error: `idle_session_timeout`, `idle_in_transaction_
session_timeout`, a server shutting down, ...), `sessions_abandoned` (the client went away
without a Terminate message: a crashed or killed application, a dropped network path) and
`sessions_killed` (`pg_terminate_backend`, an operator or a pooler's reaper). Each is read as
the growth since the previous poll, summed over databases, the way `deadlocks` is: a database
whose `stats_reset` (or the server's start time) changed, or whose counter went down, counts
from zero; a database not seen before is only a baseline. A session counts only once it has
logged in: a refused or failed login never reaches these counters, which is why the login probe
exists beside them.

Older servers have no such columns: the query reads them through `to_jsonb(row)`, so they are
null there and the readings are absent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

SESSION_CHECKS = ("sessions_fatal", "sessions_abandoned", "sessions_killed")
UNIT = "sessions"

Counters = dict[int, tuple[int, str | None]]
"""A counter per database oid, with what makes its baseline (`stats_reset|server start`)."""


def counter_delta(previous: Counters | None, current: Counters) -> int | None:
    """Growth since the last poll, summed over databases; None on the first poll.

    A database whose baseline changed, or whose counter went down (stats reset, crash restart),
    counts from zero; a database not seen before is only a baseline.
    """
    if previous is None:
        return None
    total = 0
    for oid, (count, reset) in current.items():
        before = previous.get(oid)
        if before is None:
            continue
        if reset != before[1] or count < before[0]:
            total += count
        else:
            total += count - before[0]
    return total


def session_counters(text: str, started: str) -> dict[str, Counters]:
    """The `sessions` column of `queries.DEADLOCKS` (`[[datid, stats_reset, fatal, abandoned,
    killed], ...]`) → counters per check; empty on a server without the columns."""
    found: dict[str, Counters] = {}
    for datid, reset, *counts in json.loads(text):
        for check, count in zip(SESSION_CHECKS, counts, strict=True):
            if count is not None:
                found.setdefault(check, {})[int(datid)] = (int(count), f"{reset}|{started}")
    return found


def session_deltas(
    previous: Mapping[str, Counters] | None, current: Mapping[str, Counters]
) -> dict[str, int]:
    """Each check's growth since the previous poll; none on the first poll."""
    deltas: dict[str, int] = {}
    for check, counters in current.items():
        delta = counter_delta(None if previous is None else previous.get(check), counters)
        if delta is not None:
            deltas[check] = delta
    return deltas
