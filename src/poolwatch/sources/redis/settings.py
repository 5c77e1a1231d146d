"""Settings of the Redis source (docs/sources/redis.md): each URL is parsed at load by the same
code that connects with it, so a typo is refused with the key named instead of paging
"Redis down"."""

from __future__ import annotations

from typing import Annotated, ClassVar
from urllib.parse import urlsplit

from pydantic import Field, model_validator

from poolwatch.config.fields import (
    REDACTED_URL,
    SENSITIVE,
    Duration,
    DurationOrOff,
    Name,
    Parents,
    Secret,
    check_url_port,
    check_userinfo,
    credential,
)
from poolwatch.config.plugin import EnvVar, Judged, TargetedSettings
from poolwatch.sources.redis.readings import BOUNDED_PERCENT, CHECKS


def check_url(text: str) -> str:
    text = text.strip()
    check_userinfo(text, at_in_path=True)
    try:
        parts = urlsplit(text)
    except ValueError as exc:
        raise ValueError(f"not a valid URL ({exc})") from None
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ValueError(
            f"scheme {parts.scheme or '(none)'!r} is not Redis; expected redis://host:6379/0, "
            "rediss://… or unix:///path/to/redis.sock"
        )
    check_url_port(parts.netloc)
    return text


RedisUrl = Annotated[str, credential(check_url), REDACTED_URL, SENSITIVE]


class RedisTarget(Judged):
    CHECKS: ClassVar[tuple[str, ...]] = CHECKS
    BOUNDED_PERCENT: ClassVar[frozenset[str]] = BOUNDED_PERCENT

    name: Name
    url: RedisUrl = "redis://127.0.0.1:6379/0"
    username: str | None = None
    password: Secret | None = None
    max_clients: int | None = Field(None, ge=1)
    hit_rate_min_lookups: int = Field(100, ge=1)
    hit_rate_window: Duration = Field(600.0, gt=0)
    probe_interval: DurationOrOff = None
    """Seconds between login probes (None: off); inherited from the section (default 30 s)."""
    depends_on: Parents = []
    """`source:instance` of what this target needs (`docker:<container>`, `postgres:<target>`):
    while one is down, this target's alerts are held under it. Given, it replaces the parents
    found from the URL (docs/sources/redis.md, "Depends on"); per target, not inherited."""

    @model_validator(mode="after")
    def _connectable(self) -> RedisTarget:
        """The options redis-py makes of the URL (db number, query options) are checked by
        redis-py itself, imported only when a Redis target is configured."""
        from poolwatch.sources.redis.options import check_options

        check_options(self)
        return self


class RedisSettings(TargetedSettings):
    SOURCE: ClassVar[str] = "redis"
    COLLECTOR: ClassVar[str] = "poolwatch.sources.redis.collector:RedisCollector"
    TITLE: ClassVar[str] = "Redis"
    TEAM: ClassVar[str] = "database"
    CHECKS: ClassVar[tuple[str, ...]] = CHECKS
    BOUNDED_PERCENT: ClassVar[frozenset[str]] = BOUNDED_PERCENT
    TARGET_INHERITS: ClassVar[tuple[str, ...]] = (
        "max_clients",
        "hit_rate_min_lookups",
        "hit_rate_window",
        "probe_interval",
    )
    ENVIRONMENT: ClassVar[tuple[EnvVar, ...]] = (
        EnvVar("REDIS_CONN_WARNING", ("rules", "connected_clients", "warning")),
        EnvVar("REDIS_CONN_CRITICAL", ("rules", "connected_clients", "critical")),
        EnvVar("REDIS_CONN_MAX", ("max_clients",)),
        EnvVar("POOLWATCH_REDIS_URL", ("targets", "main", "url")),
        EnvVar("POOLWATCH_REDIS_PROBE_INTERVAL", ("probe_interval",)),
    )

    max_clients: int | None = Field(None, ge=1)
    hit_rate_min_lookups: int = Field(100, ge=1)
    """`keyspace_hit_rate_percent` is judged only over at least this many hits + misses ..."""
    hit_rate_window: Duration = Field(600.0, gt=0)
    """... seen within this long (docs/sources/redis.md, "The hit rate")."""
    probe_interval: DurationOrOff = 30.0
    """A fresh connection (connect, AUTH, `PING`, close) this often; `off`: none."""
    targets: list[RedisTarget] = []
