"""Config → the collectors and sinks it asks for. The only place that knows every source."""

from __future__ import annotations

from poolwatch.config import Config
from poolwatch.sinks import Sink
from poolwatch.sinks.stdout import StdoutSink
from poolwatch.sources import Collector
from poolwatch.sources.host import HostCollector
from poolwatch.sources.postgres import PostgresCollector
from poolwatch.sources.redis import RedisCollector


async def build_collectors(config: Config) -> list[Collector]:
    """Every enabled collector; `auto` sources are probed here, once, at start-up."""
    collectors: list[Collector] = []
    if config.host.enabled:
        collectors.append(HostCollector(config.host))
    for redis_target in config.redis.targets:
        collectors.append(RedisCollector(redis_target))
    collectors.extend(PostgresCollector(target) for target in config.postgres.targets)
    return collectors


def build_sinks(config: Config, *, stdout: bool = True) -> list[Sink]:
    sinks: list[Sink] = []
    if stdout:
        sinks.append(StdoutSink())
    return sinks
