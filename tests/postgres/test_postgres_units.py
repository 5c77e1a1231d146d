"""The PostgreSQL source's pure parts: DSN keywords, deadlock deltas, wiring. No server needed."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from poolwatch.config import load as config
from poolwatch.runtime.plan import build_collectors
from poolwatch.sources import Collector, Partial
from poolwatch.sources.postgres.collector import PostgresCollector
from poolwatch.sources.postgres.dsn import DsnError, libpq_uri, parse_keywords
from poolwatch.sources.postgres.queries import blockers_text
from poolwatch.sources.postgres.rows import MAX_LABEL_VALUES, OTHER, bounded, deadlock_delta


def test_parse_keywords_quotes_and_escapes() -> None:
    text = r"host=db  port = 5433 password='it\'s a \\ secret' dbname=app user=''"
    assert parse_keywords(text) == {
        "host": "db",
        "port": "5433",
        "password": "it's a \\ secret",
        "dbname": "app",
        "user": "",
    }


@pytest.mark.parametrize("bad", ["host", "host=db port", "password='open"])
def test_parse_keywords_rejects(bad: str) -> None:
    with pytest.raises(DsnError):
        parse_keywords(bad)


def test_bad_dsn_is_refused_at_load_without_its_password() -> None:
    """A typo in a DSN is the operator's to fix, not "PostgreSQL down": load refuses it."""
    with pytest.raises(config.ConfigError) as caught:
        config.load(env={"POOLWATCH_POSTGRES_DSN": "host=db password='s3cret-unclosed"})
    assert "s3cret" not in str(caught.value)
    assert "POOLWATCH_POSTGRES_DSN" in str(caught.value)


def test_libpq_uri() -> None:
    assert libpq_uri("") is None
    assert libpq_uri("postgresql://u@h/db") == "postgresql://u@h/db"
    uri = libpq_uri("host=/run/postgresql user=pw application_name=x connect_timeout=3")
    assert uri is not None
    assert parse_qs(urlsplit(uri).query) == {"host": ["/run/postgresql"], "user": ["pw"]}


@pytest.mark.parametrize(
    ("previous", "current", "expected"),
    [
        (None, {1: (5, "r")}, None),  # first poll: no delta yet
        ({1: (5, "r")}, {1: (5, "r")}, 0),
        ({1: (5, "r")}, {1: (7, "r")}, 2),
        ({1: (5, "r"), 2: (1, "r")}, {1: (6, "r"), 2: (3, "r")}, 3),
        ({1: (5, "r")}, {1: (1, "r2")}, 1),  # stats reset: count from zero
        ({1: (5, "r")}, {1: (2, "r")}, 2),  # counter went down without a reset time
        ({1: (5, "r")}, {1: (5, "r"), 9: (4, "r")}, 0),  # a new database is a baseline
    ],
)
def test_deadlock_delta(
    previous: dict[int, tuple[int, str | None]] | None,
    current: dict[int, tuple[int, str | None]],
    expected: int | None,
) -> None:
    assert deadlock_delta(previous, current) == expected


def test_bounded_cardinality() -> None:
    counts = {f"db{i:02}": i for i in range(1, 31)}
    kept = bounded(counts)
    assert len(kept) == MAX_LABEL_VALUES + 1
    assert kept[OTHER] == sum(range(1, 11))
    assert sum(kept.values()) == sum(counts.values())


async def test_assemble_builds_one_collector_per_target() -> None:
    loaded = config.load(
        env={
            "POOLWATCH_POSTGRES_DSN": "postgresql://u:pw@db/app",
            "POOLWATCH_HOST_STATS": "off",
            "POOLWATCH_DOCKER": "off",
            "POSTGRES_CONN_WARNING": "75%",
        }
    )
    collectors = await build_collectors(loaded)
    assert len(collectors) == 1
    collector = collectors[0]
    assert isinstance(collector, PostgresCollector)
    assert isinstance(collector, Collector)
    assert isinstance(collector, Partial)
    assert collector.instance == "main"
    assert str(collector.rules["connections"].warning) == "75%"


def test_blockers_text_names_catalogs_without_a_lookup() -> None:
    rows = [
        {"pid": 4242, "mode": "AccessExclusiveLock", "granted": True, "relation": 1262},
        {"pid": 77, "mode": "AccessExclusiveLock", "granted": False, "relation": 12345},
    ]
    assert blockers_text(rows) == (
        "pid 4242 holds AccessExclusiveLock on pg_database;"
        " pid 77 waits for AccessExclusiveLock on relation oid 12345"
    )
    assert blockers_text([]) == "the lock was released before it could be named"


def test_a_database_called_other_never_merges_with_the_overflow() -> None:
    """A database literally named `(other)` (seen in the soak) kept its own count, but shared the
    overflow bucket's label, so the two were summed. Now its label is `\\(other)`."""
    from poolwatch.sources.postgres.rows import label_value

    counts = {f"db{n:02}": 100 - n for n in range(MAX_LABEL_VALUES + 5)}  # 5 overflow
    counts["(other)"] = 99
    kept = bounded({label_value(name): n for name, n in counts.items()})
    assert kept["\\(other)"] == 99
    assert kept[OTHER] == sum(100 - n for n in range(MAX_LABEL_VALUES - 1, MAX_LABEL_VALUES + 5))
    assert sum(kept.values()) == sum(counts.values())
    assert label_value("\\odd") == "\\\\odd"
    assert label_value("plain") == "plain"
