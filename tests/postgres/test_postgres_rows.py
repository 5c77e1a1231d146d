"""PostgreSQL's rows → readings (poolwatch.sources.postgres.rows), pure, against rows recorded
from a real PostgreSQL 15 (data/postgres-15.json, `python -m tests.postgres.record`): no server
needed. The same reads against a live server are proved in the other tests of this folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from poolwatch.core.model import Reading
from poolwatch.sources.postgres import rows

RECORDED: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parent / "data" / "postgres-15.json").read_text()
)
CORE: dict[str, Any] = RECORDED["core"]
STARTED: str = CORE["started"]


def table(readings: list[Reading]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(r.check, tuple(sorted(r.labels.items()))): r.value for r in readings}


def test_core_row_gives_the_counts_against_the_usable_pool() -> None:
    counted = rows.counts("main", CORE, None)
    found = table(counted.readings)
    assert found[("connections", ())] == 8
    assert found[("connections_waiting_on_locks", ())] == 0
    assert found[("connections_by_state", (("state", "idle"),))] == 6
    assert found[("connections_by_state", (("state", "idle_in_transaction"),))] == 1
    assert found[("connections_by_state", (("state", "unknown"),))] == 0  # every state listed
    assert found[("connections_by_application", (("application", "app"),))] == 3
    assert found[("connections_by_application", (("application", "batch"),))] == 2
    assert found[("connections_by_application", (("application", rows.UNNAMED),))] == 3
    assert found[("connections_by_client", (("client", "127.0.0.1"),))] == 7
    assert found[("oldest_transaction_seconds", ())] == CORE["oldest_transaction"]
    # 200 - superuser_reserved 3 - reserved 0: what ordinary roles can use
    assert counted.server_limit == counted.limit == 197
    assert {r.limit for r in counted.readings if r.unit == "connections"} == {197}
    assert (counted.notes, counted.exhausted) == ([], None)
    assert counted.databases == {5: 8}
    assert counted.users == {16385: 6, 16384: 1, 10: 1}


def test_a_configured_limit_may_lower_the_pool_never_raise_it() -> None:
    assert rows.counts("main", CORE, 50).limit == 50
    above = rows.counts("main", CORE, 500)
    assert above.limit == 197
    assert len(above.notes) == 1  # said once, never used


def test_a_full_pool_says_why_in_the_servers_numbers() -> None:
    full = rows.counts("main", {**CORE, "connections": 197}, None)
    assert full.exhausted is not None
    assert "197 client connections of 197 usable" in full.exhausted
    assert "max_connections 200, 3 reserved" in full.exhausted


def test_names_row_names_the_counts_and_the_roles() -> None:
    counted = rows.counts("main", CORE, None)
    named, users = rows.by_name("main", RECORDED["names"], counted)
    assert table(named) == {
        ("connections_by_database", (("database", "postgres"),)): 8,
        ("connections_by_user", (("user", "pw_load"),)): 6,
        ("connections_by_user", (("user", "pw_monitor"),)): 1,
        ("connections_by_user", (("user", "postgres"),)): 1,
    }
    assert users == {16385: "pw_load", 16384: "pw_monitor", 10: "postgres"}


def test_a_role_dropped_since_the_count_is_counted_unnamed() -> None:
    counted = rows.counts("main", CORE, None)
    names = {**RECORDED["names"], "users": json.dumps({"16385": "70775f6c6f6164"})}
    named, _ = rows.by_name("main", names, counted)
    assert table(named)[("connections_by_user", (("user", ""),))] == 2


def test_counters_grow_from_the_previous_poll_only() -> None:
    first, second = RECORDED["deadlocks"]
    before = rows.deadlocks("main", first, STARTED, None, None)
    assert before.readings == []  # the first poll only sets the baseline
    after = rows.deadlocks("main", second, STARTED, before.deadlocks, before.sessions)
    assert table(after.readings) == {
        ("deadlocks", ()): 0,
        ("sessions_fatal", ()): 0,
        ("sessions_abandoned", ()): 0,
        ("sessions_killed", ()): 3,  # the recorder killed 3 sessions between the rows
    }
    # the same counters after a restart (another start time) count from zero
    restarted = rows.deadlocks("main", second, "later", after.deadlocks, after.sessions)
    assert table(restarted.readings)[("sessions_killed", ())] == 3


@pytest.mark.parametrize("recorded", [True, False])
def test_sizes_escape_names_and_say_which_have_none(recorded: bool) -> None:
    row = RECORDED["sizes"]
    if not recorded:  # a DROP DATABASE under way: its files are gone, its row not yet
        row = {"sizes": json.dumps([["706f737467726573", 100], ["676f6e65", None]])}
    sized, unread = rows.sizes("main", row)
    if recorded:
        assert table(sized) == {
            ("database_size_bytes", (("database", "postgres"),)): 7732583,
            ("database_size_bytes", (("database", "\\(other)"),)): 7545347,
        }
        assert unread == []
    else:
        assert table(sized) == {("database_size_bytes", (("database", "postgres"),)): 100}
        assert unread == ["size of database 'gone': none (being dropped?)"]
