"""Settings of the PostgreSQL source (docs/sources/postgres.md): every DSN is parsed at load,
so a typo is refused with the key named instead of paging "PostgreSQL down"."""

from __future__ import annotations

from typing import Annotated, ClassVar
from urllib.parse import parse_qsl, urlsplit

from pydantic import Field

from poolwatch.config.fields import (
    REDACTED_URL,
    SENSITIVE,
    Duration,
    DurationOrOff,
    Name,
    Parents,
    Secret,
    check_port,
    check_url_port,
    check_userinfo,
    credential,
)
from poolwatch.config.plugin import EnvVar, Judged, TargetedSettings
from poolwatch.core.secrets import is_uri
from poolwatch.sources.postgres.dsn import DsnError, parse_keywords
from poolwatch.sources.postgres.readings import CHECKS


def check_dsn(text: str) -> str:
    """A libpq DSN: `postgresql://…` or `key=value …`, with a valid port; empty means libpq's
    defaults and variables (`PGHOST`, …)."""
    text = text.strip()
    if not text:
        return text
    if is_uri(text):
        check_userinfo(text, at_in_path=True)
        parts = urlsplit(text)
        if parts.scheme not in ("postgres", "postgresql"):
            raise ValueError(
                f"scheme {parts.scheme!r} is not PostgreSQL; expected postgresql://user@host/db"
            )
        userinfo, at, hosts = parts.netloc.rpartition("@")
        for host in hosts.split(","):  # libpq's multi-host form
            check_url_port(f"{userinfo}{at}{host}")
        for key, value in parse_qsl(parts.query):
            if key == "port":
                for item in value.split(","):
                    check_port(item, "the")
        return text
    try:
        params = parse_keywords(text)
    except DsnError as exc:
        raise ValueError(str(exc)) from None
    for item in params.get("port", "").split(","):
        if item:
            check_port(item, "the")
    return text


PostgresDsn = Annotated[str, credential(check_dsn), REDACTED_URL, SENSITIVE]


class PostgresTarget(Judged):
    CHECKS: ClassVar[tuple[str, ...]] = CHECKS

    name: Name
    dsn: PostgresDsn = ""
    password: Secret | None = None
    max_connections: int | None = Field(None, ge=1)
    include_query_text: bool = False
    probe_interval: DurationOrOff = None
    """Seconds between login probes (None: off); inherited from the section (default 30 s)."""
    size_interval: Duration = 300.0
    """Seconds between reads of the database sizes; inherited from the section (default 5 min)."""
    depends_on: Parents = []
    """`source:instance` of what this target needs (`docker:<container>`, `postgres:<target>`):
    while one is down, this target's alerts are held under it. Given, it replaces the parents
    found from the DSN (docs/sources/postgres.md, "Depends on"); per target, not inherited."""


class PostgresSettings(TargetedSettings):
    SOURCE: ClassVar[str] = "postgres"
    COLLECTOR: ClassVar[str] = "poolwatch.sources.postgres.collector:PostgresCollector"
    TITLE: ClassVar[str] = "PostgreSQL"
    TEAM: ClassVar[str] = "database"
    CHECKS: ClassVar[tuple[str, ...]] = CHECKS
    TARGET_INHERITS: ClassVar[tuple[str, ...]] = (
        "max_connections",
        "include_query_text",
        "probe_interval",
        "size_interval",
    )
    ENVIRONMENT: ClassVar[tuple[EnvVar, ...]] = (
        EnvVar("POSTGRES_CONN_WARNING", ("rules", "connections", "warning")),
        EnvVar("POSTGRES_CONN_CRITICAL", ("rules", "connections", "critical")),
        EnvVar("POSTGRES_CONN_MAX", ("max_connections",)),
        EnvVar("POOLWATCH_POSTGRES_DSN", ("targets", "main", "dsn")),
        EnvVar("POOLWATCH_POSTGRES_PROBE_INTERVAL", ("probe_interval",)),
    )

    max_connections: int | None = Field(None, ge=1)
    include_query_text: bool = False
    """Holders and blockers in an event's context carry their query's first 200 characters,
    literals replaced: off by default, since a query's values may hold personal data."""
    probe_interval: DurationOrOff = 30.0
    """A fresh login (connect, authenticate, `SELECT 1`, close) this often; `off`: none."""
    size_interval: Duration = 300.0
    """`pg_database_size` stats every file of every database: read this often, not every poll
    (the last sizes are reported in between). Sizes change slowly; a disk-space alert needs them
    minutes old at most, not seconds."""
    targets: list[PostgresTarget] = []
