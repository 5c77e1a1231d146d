"""Config → the collectors and sinks it asks for. The only place that knows every source."""

from __future__ import annotations

from poolwatch.config import Config
from poolwatch.sinks import Sink
from poolwatch.sinks.stdout import StdoutSink
from poolwatch.sources import Collector
from poolwatch.sources.host import HostCollector
from poolwatch.sources.postgres import PostgresCollector


async def build_collectors(config: Config) -> list[Collector]:
    """Every enabled collector; `auto` sources are probed here, once, at start-up."""
    collectors: list[Collector] = []
    if config.host.enabled:
        collectors.append(HostCollector(config.host))
    collectors.extend(PostgresCollector(target) for target in config.postgres.targets)
    return collectors


def build_sinks(config: Config, *, stdout: bool = True) -> list[Sink]:
    sinks: list[Sink] = []
    if stdout:
        sinks.append(StdoutSink())
    return sinks
