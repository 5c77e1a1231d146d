"""Config → the collectors and sinks it asks for. The only place that knows every source."""

from __future__ import annotations

from poolwatch.config import Config
from poolwatch.sinks import Sink
from poolwatch.sinks.stdout import StdoutSink
from poolwatch.sources import Collector
from poolwatch.sources.docker import DockerCollector
from poolwatch.sources.host import HostCollector


async def build_collectors(config: Config) -> list[Collector]:
    """Every enabled collector; `auto` sources are probed here, once, at start-up."""
    collectors: list[Collector] = []
    if config.host.enabled:
        collectors.append(HostCollector(config.host))
    if config.docker.enabled != "off":
        docker = DockerCollector(config.docker)
        if config.docker.enabled == "on" or await docker.probe():
            collectors.append(docker)
        else:
            await docker.close()
    return collectors


def build_sinks(config: Config, *, stdout: bool = True) -> list[Sink]:
    sinks: list[Sink] = []
    if stdout:
        sinks.append(StdoutSink())
    return sinks
