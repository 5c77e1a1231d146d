"""Settings of the PgBouncer source (docs/sources/pgbouncer.md): the DSN of each target's admin
console is parsed at load, so a typo, or a DSN naming a pooled database instead of the console,
is refused with the key named instead of paging "PgBouncer down"."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, ClassVar
from urllib.parse import unquote, urlsplit

from poolwatch.config.fields import (
    REDACTED_URL,
    SENSITIVE,
    DurationOrOff,
    Name,
    Parents,
    Secret,
    credential,
)
from poolwatch.config.plugin import EnvVar, Judged, TargetedSettings
from poolwatch.core.secrets import is_uri
from poolwatch.sources.pgbouncer.readings import CHECKS

# PgBouncer speaks libpq's protocol and DSNs: the PostgreSQL plugin's parser is the one grammar
from poolwatch.sources.postgres.dsn import parse_keywords
from poolwatch.sources.postgres.settings import check_dsn

if TYPE_CHECKING:
    pass

ADMIN_DATABASE = "pgbouncer"
"""The admin console is PgBouncer's virtual database of this name."""


def _database(text: str) -> str:
    """The database a checked libpq DSN names ("" when none)."""
    if is_uri(text):
        return unquote(urlsplit(text).path.lstrip("/"))
    return parse_keywords(text).get("dbname", "")


def check_admin_dsn(text: str) -> str:
    """A libpq DSN whose database, when it names one, is the admin console (`pgbouncer`); one
    left out is set to it when connecting."""
    text = check_dsn(text)
    database = _database(text)
    if database and database != ADMIN_DATABASE:
        raise ValueError(
            f"database {database!r} is not the admin console; PgBouncer is read from its "
            f"virtual database {ADMIN_DATABASE!r}, like postgresql://poolwatch@pgbouncer:6432/"
            f"{ADMIN_DATABASE}"
        )
    return text


PgBouncerDsn = Annotated[str, credential(check_admin_dsn), REDACTED_URL, SENSITIVE]


def check_probe_dsn(text: str) -> str:
    """A libpq DSN into a database PgBouncer pools, never its admin console: the console is
    exempt from `max_client_conn` and reaches no server, so a login into it cannot tell whether
    an application can log in."""
    text = check_dsn(text)
    if not text:
        raise ValueError(
            "empty; give a DSN into a database PgBouncer pools, like "
            "postgresql://app@pgbouncer:6432/app, or leave probe_dsn out (no login probe)"
        )
    if _database(text) == ADMIN_DATABASE:
        raise ValueError(
            f"the admin console {ADMIN_DATABASE!r} is exempt from max_client_conn and reaches no "
            "server, so a login into it proves nothing; name a database PgBouncer pools, like "
            "postgresql://app@pgbouncer:6432/app"
        )
    return text


ProbeDsn = Annotated[str, credential(check_probe_dsn), REDACTED_URL, SENSITIVE]


class PgBouncerTarget(Judged):
    CHECKS: ClassVar[tuple[str, ...]] = CHECKS

    name: Name
    dsn: PgBouncerDsn = ""
    password: Secret | None = None
    probe_dsn: ProbeDsn | None = None
    """Where the login probe logs in through PgBouncer (its own credentials); none: no probe."""
    probe_interval: DurationOrOff = None
    """Seconds between login probes (None: off); inherited from the section (default 30 s)."""
    depends_on: Parents = []
    """`source:instance` of what this target needs (`docker:<container>`, `postgres:<target>`):
    while one is down, this target's alerts are held under it. Given, it replaces the parents
    found from the DSN (docs/sources/pgbouncer.md, "Depends on"); per target, not inherited."""


class PgBouncerSettings(TargetedSettings):
    SOURCE: ClassVar[str] = "pgbouncer"
    COLLECTOR: ClassVar[str] = "poolwatch.sources.pgbouncer.collector:PgBouncerCollector"
    TITLE: ClassVar[str] = "PgBouncer"
    TEAM: ClassVar[str] = "database"
    CHECKS: ClassVar[tuple[str, ...]] = CHECKS
    TARGET_INHERITS: ClassVar[tuple[str, ...]] = ("probe_interval",)
    ENVIRONMENT: ClassVar[tuple[EnvVar, ...]] = (
        EnvVar("POOLWATCH_PGBOUNCER_DSN", ("targets", "main", "dsn")),
        EnvVar("POOLWATCH_PGBOUNCER_PROBE_INTERVAL", ("probe_interval",)),
    )

    probe_interval: DurationOrOff = 30.0
    """A login through PgBouncer (connect, authenticate, `SELECT 1`, close) this often, for the
    targets with a `probe_dsn`; `off`: none."""
    targets: list[PgBouncerTarget] = []
