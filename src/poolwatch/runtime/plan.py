"""Config → the collectors and sinks it asks for.

Collectors are planned, not built: each `Planned` says what needs a new connection when it
changes (`identity`: the target's settings without its rules, interval and timeout), so a
config reload keeps every connection whose settings did not change. Each source plans itself
(`SourceSettings.plan`); this module only walks the config's sources.

Each source and sink module is imported only when the config enables it: their client libraries
(asyncpg, redis, the Docker SDK, httpx) are most of poolwatch's start-up time and memory, and a
`--once` of the host alone needs none of them (docs/performance.md, "Benchmarks").
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from poolwatch.config.model import Config
from poolwatch.sinks import Sink
from poolwatch.sinks.stdout.sink import StdoutSink
from poolwatch.sources import Collector, Planned

if TYPE_CHECKING:
    from poolwatch.runtime.deadman import Pulse


async def plan(config: Config, running: Collection[str] = ()) -> list[Planned]:
    """Every enabled collector; `auto` sources are probed here, once per (re)load, unless
    already `running` (owners of the collectors a reload starts from)."""
    items: list[Planned] = []
    for source in config.sources():
        items.extend(await source.plan(running))
    return items


async def build_collectors(config: Config) -> list[Collector]:
    return [item.build() for item in await plan(config)]


def build_sinks(config: Config, *, stdout: bool = True, pulse: Pulse | None = None) -> list[Sink]:
    """The configured sinks; with `pulse` (the daemon), webhooks send heartbeats and each
    Alertmanager gets `PoolwatchWatchdog`."""
    sinks: list[Sink] = []
    if stdout:
        sinks.append(StdoutSink())
    if config.webhooks:
        from poolwatch.sinks.webhook.sink import WebhookSink

        beat = pulse.heartbeat if pulse else None
        sinks.extend(
            WebhookSink(hook, config.state_dir, heartbeat=beat) for hook in config.webhooks
        )
    am = config.alertmanager
    if am.urls:
        from poolwatch.sinks.alertmanager.sink import AlertmanagerSink

        sinks.extend(
            AlertmanagerSink(
                am,
                url,
                config.state_dir,
                watchdog_host=pulse.host if pulse else None,
                alive=pulse.alive if pulse else None,
            )
            for url in am.urls
        )
    return sinks
