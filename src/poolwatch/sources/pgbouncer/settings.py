"""Settings of the PgBouncer source (README "Source: PgBouncer"): the DSN of each target's admin
console is parsed at load, so a typo, or a DSN naming a pooled database instead of the console,
is refused with the key named instead of paging "PgBouncer down"."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, ClassVar
from urllib.parse import unquote, urlsplit

from poolwatch.config.fields import REDACTED_URL, SENSITIVE, Name, Secret, credential
from poolwatch.config.plugin import EnvVar, Judged, TargetedSettings
from poolwatch.sources.pgbouncer.readings import CHECKS

# PgBouncer speaks libpq's protocol and DSNs: the PostgreSQL plugin's parser is the one grammar
from poolwatch.sources.postgres.dsn import parse_keywords
from poolwatch.sources.postgres.settings import check_dsn

if TYPE_CHECKING:
    from poolwatch.sources import Collector

ADMIN_DATABASE = "pgbouncer"
"""The admin console is PgBouncer's virtual database of this name."""


def check_admin_dsn(text: str) -> str:
    """A libpq DSN whose database, when it names one, is the admin console (`pgbouncer`); one
    left out is set to it when connecting."""
    text = check_dsn(text)
    if "://" in text:
        database = unquote(urlsplit(text).path.lstrip("/"))
    else:
        database = parse_keywords(text).get("dbname", "")
    if database and database != ADMIN_DATABASE:
        raise ValueError(
            f"database {database!r} is not the admin console; PgBouncer is read from its "
            f"virtual database {ADMIN_DATABASE!r}, like postgresql://poolwatch@pgbouncer:6432/"
            f"{ADMIN_DATABASE}"
        )
    return text


PgBouncerDsn = Annotated[str, credential(check_admin_dsn), REDACTED_URL, SENSITIVE]


class PgBouncerTarget(Judged):
    CHECKS: ClassVar[tuple[str, ...]] = CHECKS

    name: Name
    dsn: PgBouncerDsn = ""
    password: Secret | None = None


class PgBouncerSettings(TargetedSettings):
    SOURCE: ClassVar[str] = "pgbouncer"
    CHECKS: ClassVar[tuple[str, ...]] = CHECKS
    ENVIRONMENT: ClassVar[tuple[EnvVar, ...]] = (
        EnvVar("POOLWATCH_PGBOUNCER_DSN", ("targets", "main", "dsn")),
    )

    targets: list[PgBouncerTarget] = []

    def collector(self) -> Callable[[Any], Collector]:
        from poolwatch.sources.pgbouncer.collector import PgBouncerCollector

        return PgBouncerCollector
