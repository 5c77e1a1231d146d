"""Config → the collectors and sinks it asks for. The only place that knows every source.

Collectors are planned, not built: each `Planned` says what needs a new connection when it
changes (`identity`: the target's settings without its rules, interval and timeout), so a
config reload keeps every connection whose settings did not change.

Each source and sink module is imported only when the config enables it: their client libraries
(asyncpg, redis, the Docker SDK, httpx) are most of poolwatch's start-up time and memory, and a
`--once` of the host alone needs none of them (docs/performance.md, "Benchmarks").
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from functools import partial

from poolwatch.config.load import Config, DockerConfig, HostConfig, PostgresTarget, RedisTarget
from poolwatch.runtime.scheduler import Planned
from poolwatch.sinks import Sink
from poolwatch.sinks.stdout.sink import StdoutSink
from poolwatch.sources import Collector
from poolwatch.sources.host.collector import HostCollector, host_name

Settings = HostConfig | PostgresTarget | RedisTarget | DockerConfig
"""What one collector is configured with: always rules, interval and timeout, and the rest."""


def identity(settings: Settings) -> object:
    """The settings a running collector cannot take over without reconnecting."""
    return settings.model_copy(update={"rules": {}, "interval": 0.0, "timeout": 0.0})


def planned(owner: str, settings: Settings, build: Callable[[], Collector]) -> Planned:
    return Planned(
        owner, identity(settings), settings.rules, settings.interval, settings.timeout, build
    )


async def plan(config: Config, running: Collection[str] = ()) -> list[Planned]:
    """Every enabled collector; `auto` sources are probed here, once per (re)load, unless
    already `running` (owners of the collectors a reload starts from)."""
    items: list[Planned] = []
    if config.host.enabled:
        host = config.host
        items.append(planned(f"host:{host_name(host.rootfs)}", host, partial(HostCollector, host)))
    if config.postgres.targets:
        from poolwatch.sources.postgres.collector import PostgresCollector

        items += [
            planned(f"postgres:{pg.name}", pg, partial(PostgresCollector, pg))
            for pg in config.postgres.targets
        ]
    if config.docker.enabled != "off":
        items.extend(await _docker(config.docker, running))
    if config.redis.targets:
        from poolwatch.sources.redis.collector import RedisCollector

        items += [
            planned(f"redis:{rd.name}", rd, partial(RedisCollector, rd))
            for rd in config.redis.targets
        ]
    return items


async def _docker(dk: DockerConfig, running: Collection[str]) -> list[Planned]:
    from poolwatch.sources.docker.collector import DockerCollector

    owner = f"docker:{DockerCollector.instance}"
    # a reload keeps a running Docker source even if the engine is down right now: that is
    # DockerDown, not "no Docker here"
    if dk.enabled == "auto" and owner not in running and not await docker_answers(dk):
        return []
    return [planned(owner, dk, partial(DockerCollector, dk))]


async def docker_answers(settings: DockerConfig) -> bool:
    """`enabled: auto`: is there an engine? Asked with a throw-away client, so that a reload
    that keeps the running collector builds nothing that lingers."""
    from poolwatch.sources.docker.collector import DockerCollector

    probe = DockerCollector(settings)
    try:
        return await probe.probe()
    finally:
        await probe.close()


async def build_collectors(config: Config) -> list[Collector]:
    return [item.build() for item in await plan(config)]


def build_sinks(config: Config, *, stdout: bool = True) -> list[Sink]:
    sinks: list[Sink] = []
    if stdout:
        sinks.append(StdoutSink())
    if config.webhooks:
        from poolwatch.sinks.webhook.sink import WebhookSink

        sinks.extend(WebhookSink(hook, config.state_dir) for hook in config.webhooks)
    am = config.alertmanager
    if am.urls:
        from poolwatch.sinks.alertmanager.sink import AlertmanagerSink

        sinks.extend(AlertmanagerSink(am, url, config.state_dir) for url in am.urls)
    return sinks
