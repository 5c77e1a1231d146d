"""SHOW output → readings, from recorded PgBouncer 1.18 output and the 1.24 column set: the
denominators PgBouncer itself enforces, columns by name, bounded labels, wait deltas."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from poolwatch.core.model import Reading
from poolwatch.sources.pgbouncer.readings import CHECKS
from poolwatch.sources.pgbouncer.show import (
    COMMANDS,
    MAX_LABEL_VALUES,
    OTHER,
    Pool,
    Snapshot,
    bounded,
    readings,
    snapshot,
    wait_per_transaction,
)

DATA = Path(__file__).resolve().parent / "data"


def recorded(name: str, shuffle: random.Random | None = None) -> Snapshot:
    """A data file as a Snapshot; `shuffle` reorders every table's columns."""
    raw: dict[str, Any] = json.loads((DATA / name).read_text())
    tables: dict[str, list[dict[str, Any]]] = {}
    for key, command in COMMANDS.items():
        columns, rows = raw[command]["columns"], raw[command]["rows"]
        order = list(range(len(columns)))
        if shuffle is not None:
            shuffle.shuffle(order)
        tables[key] = [{columns[i]: row[i] for i in order} for row in rows]
    return snapshot(tables)


def one(found: list[Reading], check: str, **labels: str) -> Reading:
    matches = [r for r in found if r.check == check and dict(r.labels) == labels]
    assert len(matches) == 1, (check, labels, found)
    return matches[0]


def test_pgbouncer_1_18_recording_with_a_queue() -> None:
    """Real 1.18 output: 12 pgbench clients on a pool of 2 in transaction mode."""
    found, counters = readings("main", recorded("pgbouncer-1.18.0.json"), None)
    pool = {"database": "postgres", "user": "pw_load"}
    assert one(found, "up").value == 1
    clients = one(found, "client_connections")
    assert (clients.value, clients.limit) == (13, 30)  # used_clients (pgbench + poolwatch)
    assert one(found, "clients_waiting", **pool).value == 10
    servers = one(found, "server_connections", **pool)
    assert (servers.value, servers.limit) == (2, 2)  # default_pool_size 2, no reserve
    assert one(found, "pool_saturated", **pool).value == 1
    exhausted = one(found, "pool_exhausted")  # a pool at its size with clients waiting
    assert exhausted.value == 1
    assert exhausted.message == (
        "pool at its size with clients waiting: postgres/pw_load 2/2 servers, 10 waiting"
    )
    wait = one(found, "max_wait_seconds", **pool)
    assert wait.value == pytest.approx(0.870895)  # maxwait 0 s + maxwait_us
    assert wait.limit == 120  # query_wait_timeout
    database = one(found, "database_server_connections", database="postgres")
    assert (database.value, database.limit) == (2, None)  # max_db_connections 0: none
    # the admin console's own database is left out; no delta on the first poll
    assert not [r for r in found if "pgbouncer" in r.labels.values()]
    assert not [r for r in found if r.check == "wait_per_transaction_seconds"]
    assert counters == {"postgres": (14206637, 30)}


def test_pgbouncer_1_24_column_set_and_denominators() -> None:
    found, _ = readings("main", recorded("pgbouncer-1.24.1.json"), None)
    assert (one(found, "client_connections").value, one(found, "client_connections").limit) == (
        45,
        200,
    )
    app = {"database": "app", "user": "app_rw"}
    servers = one(found, "server_connections", **app)
    assert (servers.value, servers.limit) == (25, 25)  # pool_size 20 + reserve_pool_size 5
    assert one(found, "pool_saturated", **app).value == 1
    assert one(found, "max_wait_seconds", **app).value == pytest.approx(2.5)
    batch = {"database": "app", "user": "batch"}
    servers = one(found, "server_connections", **batch)
    assert (servers.value, servers.limit) == (4, 4)  # the user's own pool 3 + reserve 1
    assert one(found, "pool_saturated", **batch).value == 0  # full, but nobody waits
    reports = {"database": "reports", "user": "report_user"}
    servers = one(found, "server_connections", **reports)
    assert (servers.value, servers.limit) == (8, 8)  # user pool 12, capped by max_db 8
    assert one(found, "pool_saturated", **reports).value == 1
    assert one(found, "clients_waiting", **reports).value == 3
    capped = one(found, "database_server_connections", database="reports")
    assert (capped.value, capped.limit) == (8, 8)
    assert one(found, "database_server_connections", database="app").limit is None
    exhausted = one(found, "pool_exhausted")
    assert exhausted.value == 1
    assert exhausted.message is not None
    assert "app/app_rw 25/25 servers" in exhausted.message
    assert "reports/report_user 8/8 servers, 3 waiting" in exhausted.message
    assert "batch" not in exhausted.message  # full, but nobody waits


@pytest.mark.parametrize("name", ["pgbouncer-1.18.0.json", "pgbouncer-1.24.1.json"])
def test_columns_are_read_by_name_not_position(name: str) -> None:
    plain, _ = readings("main", recorded(name), None)
    shuffled, _ = readings("main", recorded(name, random.Random(7)), None)
    assert shuffled == plain
    # a delta (from the second poll) and the login probe's (the collector's, not SHOW's)
    later = {"wait_per_transaction_seconds", "login_ok", "login_seconds"}
    assert {r.check for r in plain} == set(CHECKS) - later


def test_wait_per_transaction_from_deltas_of_the_totals() -> None:
    before = {"app": (5_000_000, 1000), "reports": (2_000_000, 200), "gone": (1, 1)}
    now = {
        "app": (7_000_000, 1400),  # 2 s waited over 400 transactions
        "reports": (2_000_000, 200),  # idle: no wait
        "restarted": (10, 1),  # first seen: a baseline
    }
    assert wait_per_transaction(before, now, ["app", "reports"]) == {
        "app": pytest.approx(0.005),
        "reports": 0.0,
    }
    assert wait_per_transaction(None, now, ["app"]) == {}
    # counters that went down (PgBouncer restarted) are a baseline, not a negative wait
    assert wait_per_transaction({"app": (9_000_000, 2000)}, now, ["app"]) == {}


def test_second_poll_reports_wait_per_transaction_per_database() -> None:
    first = recorded("pgbouncer-1.24.1.json")
    _, counters = readings("main", first, None)
    stats = [dict(row) for row in first.stats]
    stats[0]["total_wait_time"] += 3_000_000
    stats[0]["total_xact_count"] += 100
    second = Snapshot(
        first.lists, first.pools, first.databases, first.users, first.config, tuple(stats)
    )
    found, _ = readings("main", second, counters)
    assert one(found, "wait_per_transaction_seconds", database="app").value == pytest.approx(0.03)
    assert one(found, "wait_per_transaction_seconds", database="reports").value == 0


def test_pool_labels_are_bounded_with_the_rest_summed() -> None:
    many = [Pool(f"db{i:03d}", "u", i, 1, i, i / 100, 10) for i in range(MAX_LABEL_VALUES + 10)]
    kept = bounded(many)
    assert len(kept) == MAX_LABEL_VALUES + 1
    other = kept[-1]
    assert (other.database, other.user) == (OTHER, OTHER)
    rest = sorted(many, key=lambda p: -p.busy)[MAX_LABEL_VALUES:]
    assert other.waiting == len(rest)
    assert other.servers == sum(p.servers for p in rest)
    assert other.size == 10 * len(rest)
    assert other.max_wait == max(p.max_wait for p in rest)
    assert "db059" in {p.database for p in kept}  # the busiest stay by name
    assert "db000" not in {p.database for p in kept}
