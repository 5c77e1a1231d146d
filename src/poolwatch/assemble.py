"""Config → the collectors and sinks it asks for. The only place that knows every source.

Collectors are planned, not built: each `Planned` says what needs a new connection when it
changes (`identity`: the target's settings without its rules, interval and timeout), so a
config reload keeps every connection whose settings did not change.
"""

from __future__ import annotations

from functools import partial

from pydantic import BaseModel

from poolwatch.config import Config
from poolwatch.runner import Planned
from poolwatch.sinks import Sink
from poolwatch.sinks.alertmanager import AlertmanagerSink
from poolwatch.sinks.stdout import StdoutSink
from poolwatch.sinks.webhook import WebhookSink
from poolwatch.sources import Collector
from poolwatch.sources.host import HostCollector, host_name
from poolwatch.sources.postgres import PostgresCollector
from poolwatch.sources.redis import RedisCollector


def identity(settings: BaseModel) -> object:
    """The settings a running collector cannot take over without reconnecting."""
    return settings.model_copy(update={"rules": {}, "interval": 0.0, "timeout": 0.0})


async def plan(config: Config) -> list[Planned]:
    """Every enabled collector; `auto` sources are probed here, once per (re)load."""
    planned: list[Planned] = []
    if config.host.enabled:
        host = config.host
        planned.append(
            Planned(
                f"host:{host_name(host.rootfs)}",
                identity(host),
                host.rules,
                host.interval,
                host.timeout,
                partial(HostCollector, host),
            )
        )
    for pg in config.postgres.targets:
        planned.append(
            Planned(
                f"postgres:{pg.name}",
                identity(pg),
                pg.rules,
                pg.interval,
                pg.timeout,
                partial(PostgresCollector, pg),
            )
        )
    for rd in config.redis.targets:
        planned.append(
            Planned(
                f"redis:{rd.name}",
                identity(rd),
                rd.rules,
                rd.interval,
                rd.timeout,
                partial(RedisCollector, rd),
            )
        )
    return planned


async def build_collectors(config: Config) -> list[Collector]:
    return [item.build() for item in await plan(config)]


def build_sinks(config: Config, *, stdout: bool = True) -> list[Sink]:
    sinks: list[Sink] = []
    if stdout:
        sinks.append(StdoutSink())
    sinks.extend(WebhookSink(hook, config.state_dir) for hook in config.webhooks)
    am = config.alertmanager
    sinks.extend(AlertmanagerSink(am, url, config.state_dir) for url in am.urls)
    return sinks
