"""Where the PostgreSQL, Redis and PgBouncer collectors connect (`sources.Connects`), as their
DSN or URL says with the client's defaults filled in, and their targets' `depends_on:`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from poolwatch.config.load import ConfigError, load
from poolwatch.config.secrets import redacted
from poolwatch.core.dependencies import Endpoint
from poolwatch.sources import RETAKEN, Connects, Hosts
from poolwatch.sources.host.collector import HostCollector
from poolwatch.sources.pgbouncer.collector import PgBouncerCollector
from poolwatch.sources.pgbouncer.show import COMMANDS, servers, snapshot
from poolwatch.sources.postgres.collector import PostgresCollector
from poolwatch.sources.postgres.dsn import servers as dsn_servers
from poolwatch.sources.redis.collector import RedisCollector

PGBOUNCER_DATA = Path(__file__).resolve().parent / "pgbouncer_source" / "data"
SOURCES = {
    "postgres": ("dsn", "postgresql://mon@db/app", PostgresCollector),
    "redis": ("url", "redis://cache:6379/0", RedisCollector),
    "pgbouncer": ("dsn", "postgresql://mon@pgbouncer:6432/pgbouncer", PgBouncerCollector),
}


@pytest.mark.parametrize(
    ("dsn", "environment", "expected"),
    [
        ("", {}, [("/var/run/postgresql", 5432)]),  # libpq: no host is the unix socket
        ("user=mon", {"PGHOST": "db", "PGPORT": "6000"}, [("db", 6000)]),
        ("", {"PGHOST": "/tmp"}, [("/tmp", 5432)]),
        ("", {"PGHOSTADDR": "10.0.0.5", "PGHOST": "db"}, [("10.0.0.5", 5432)]),
        ("postgresql://mon@db:5433/app", {"PGHOST": "other"}, [("db", 5433)]),
        ("postgresql://mon@db/app", {"PGPORT": "6000"}, [("db", 6000)]),
        ("postgresql://mon:p%40ss%3Aw@db/app", {}, [("db", 5432)]),
        ("postgres://mon@a:5433,b/app", {}, [("a", 5433), ("b", 5432)]),
        ("postgresql://mon@[fd00::2]:5433/app", {}, [("fd00::2", 5433)]),
        ("postgresql://mon@[fd00::2]/app", {}, [("fd00::2", 5432)]),
        ("postgresql://mon@%2Frun%2Fpostgresql/app", {}, [("/run/postgresql", 5432)]),
        ("postgresql:///app?host=/tmp&port=6000", {}, [("/tmp", 6000)]),
        ("postgresql://mon@/app?host=db", {}, [("db", 5432)]),
        ("postgresql://mon@:6000/app", {"PGHOST": "db"}, [("db", 6000)]),
        ("postgresql://mon@/app", {}, [("/var/run/postgresql", 5432)]),
        ("host=db port=5433 user=mon password='a b'", {}, [("db", 5433)]),
        ("host=a,b port=5433", {}, [("a", 5433), ("b", 5433)]),
        ("host=a,b port=5433,5434", {}, [("a", 5433), ("b", 5434)]),
        ("host=db,db port=5433", {}, [("db", 5433)]),
        ("hostaddr=10.0.0.5 host=db.example", {}, [("10.0.0.5", 5432)]),
    ],
)
def test_a_dsn_connects_where_libpq_would(
    dsn: str, environment: dict[str, str], expected: list[tuple[str, int]]
) -> None:
    assert dsn_servers(dsn, environment) == expected


def target(tmp_path: Path, source: str, value: str | None = None, **fields: Any) -> Any:
    """One target named `main` of `source`, loaded from YAML as an operator writes it."""
    key, default, _ = SOURCES[source]
    path = tmp_path / "poolwatch.yaml"
    written = {"name": "main", key: default if value is None else value, **fields}
    path.write_text(yaml.safe_dump({source: {"targets": [written]}}))
    return getattr(load(path, {}), source).targets[0]


def test_the_postgres_collector_connects_where_its_dsn_says(tmp_path: Path) -> None:
    watched = target(tmp_path, "postgres", "host=DB.internal port=5433 user=mon")
    collector = PostgresCollector(watched, environment={})
    assert collector.endpoints() == (Endpoint(("postgres", "main"), "DB.internal", 5433),)
    assert collector.backends() == ()
    assert collector.depends_on == ()
    # without an `environment` the process's own: what asyncpg reads at connect
    assert PostgresCollector(watched).endpoints() == collector.endpoints()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://cache:6380/0", ("cache", 6380)),
        ("redis://:secret@cache/1", ("cache", 6379)),
        ("rediss://mon@[fd00::3]:6390/0", ("fd00::3", 6390)),
        ("redis:///0", ("localhost", 6379)),
        ("unix:///run/redis/redis.sock?db=0", ("/run/redis/redis.sock", None)),
    ],
)
def test_the_redis_collector_connects_where_its_url_says(
    url: str, expected: tuple[str, int | None], tmp_path: Path
) -> None:
    collector = RedisCollector(target(tmp_path, "redis", url))
    assert collector.endpoints() == (Endpoint(("redis", "main"), *expected),)
    assert collector.backends() == ()


def test_a_target_without_a_url_connects_to_loopback(tmp_path: Path) -> None:
    path = tmp_path / "poolwatch.yaml"
    path.write_text("redis:\n  targets: [{name: main}]\n")
    assert RedisCollector(load(path, {}).redis.targets[0]).endpoints() == (
        Endpoint(("redis", "main"), "127.0.0.1", 6379),
    )


def test_the_pgbouncer_collector_connects_where_its_dsn_says_and_has_no_backends_yet(
    tmp_path: Path,
) -> None:
    watched = target(tmp_path, "pgbouncer", "host=pgbouncer port=6432 dbname=pgbouncer user=mon")
    collector = PgBouncerCollector(watched, environment={})
    assert collector.endpoints() == (Endpoint(("pgbouncer", "main"), "pgbouncer", 6432),)
    assert collector.backends() == ()


def _recorded(name: str) -> Any:
    raw: dict[str, Any] = json.loads((PGBOUNCER_DATA / name).read_text())
    tables = {
        key: [dict(zip(raw[c]["columns"], row, strict=True)) for row in raw[c]["rows"]]
        for key, c in COMMANDS.items()
    }
    return snapshot(tables)


def test_pgbouncer_servers_come_from_show_databases() -> None:
    assert servers(_recorded("pgbouncer-1.24.1.json")) == [("db", 5432)]
    assert servers(_recorded("pgbouncer-1.18.0.json")) == [("127.0.0.1", 5432)]
    shown = snapshot(
        {
            "databases": [
                {"name": "pgbouncer", "host": None, "port": 6432},
                {"name": "a", "host": "pg-a,pg-b", "port": 5432},
                {"name": "b", "host": "pg-a", "port": "5432"},
                {"name": "local", "host": "", "port": 5432},  # a unix socket
                {"name": "odd", "host": "pg-c", "port": None},
            ]
        }
    )
    assert servers(shown) == [("pg-a", 5432), ("pg-b", 5432), ("pg-c", None)]


def test_the_server_collectors_connect_and_the_host_collector_does_not(tmp_path: Path) -> None:
    for source, (_, _, kind) in SOURCES.items():
        collector = kind(target(tmp_path, source))
        assert isinstance(collector, Connects), source
        assert not isinstance(collector, Hosts), source
    host = HostCollector(load(None, {}).host)
    assert not isinstance(host, Connects)


# --- depends_on -----------------------------------------------------------------------------


@pytest.mark.parametrize("source", list(SOURCES))
def test_depends_on_names_the_parents_of_a_target(source: str, tmp_path: Path) -> None:
    kind = SOURCES[source][2]
    parents = ["docker:matrixon-postgres-1", " postgres:main", "docker:matrixon-postgres-1"]
    watched = target(tmp_path, source, depends_on=parents)
    assert watched.depends_on == [p.strip() for p in parents]  # as written, for --check-config
    collector = kind(watched)
    assert collector.depends_on == (("docker", "matrixon-postgres-1"), ("postgres", "main"))
    assert kind(target(tmp_path, source, depends_on="docker:db")).depends_on == (("docker", "db"),)
    assert kind(target(tmp_path, source)).depends_on == ()


@pytest.mark.parametrize("source", list(SOURCES))
@pytest.mark.parametrize(
    ("entry", "said"),
    [
        ("matrixon-postgres-1", "expected source:instance, like docker:matrixon-postgres-1"),
        ("docker:", "expected source:instance"),
        (":main", "expected source:instance"),
        ("postgress:main", "no source named 'postgress'; write source:instance with one of"),
        ("docker:a b", "instance 'a b' is not a name"),
    ],
)
def test_a_malformed_depends_on_is_refused_naming_the_field_and_the_fix(
    source: str, entry: str, said: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError) as caught:
        target(tmp_path, source, depends_on=["docker:ok", entry])
    message = str(caught.value)
    assert f"{source}.targets.0.depends_on.1" in message
    assert said in message
    assert "\n" not in message


@pytest.mark.parametrize("source", list(SOURCES))
def test_depends_on_belongs_to_a_target_not_to_its_section(source: str, tmp_path: Path) -> None:
    """Each target is served by its own container: a section-wide parent would be wrong for all
    but one, so the section has no such key and a target inherits none."""
    path = tmp_path / "poolwatch.yaml"
    path.write_text(f"{source}:\n  depends_on: [docker:db]\n")
    with pytest.raises(ConfigError) as caught:
        load(path, {})
    assert f"{source}.depends_on" in str(caught.value)


def test_check_config_shows_depends_on(tmp_path: Path) -> None:
    path = tmp_path / "poolwatch.yaml"
    path.write_text(
        "postgres:\n  targets:\n    - {name: main, dsn: 'postgresql://mon@db/app',"
        " depends_on: [docker:matrixon-postgres-1]}\n"
    )
    shown = redacted(load(path, {}))
    assert shown["postgres"]["targets"][0]["depends_on"] == ["docker:matrixon-postgres-1"]


@pytest.mark.parametrize("source", list(SOURCES))
def test_a_reload_takes_a_new_depends_on_without_reconnecting(source: str, tmp_path: Path) -> None:
    assert "depends_on" in RETAKEN  # not part of the identity: the connection is kept
    watched = target(tmp_path, source)
    running = SOURCES[source][2](watched)
    running.reconfigure(watched.model_copy(update={"depends_on": ["docker:pg"]}))
    assert running.depends_on == (("docker", "pg"),)
