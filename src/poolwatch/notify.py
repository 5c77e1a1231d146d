"""`poolwatch --once --notify`: the non-OK results of one check, sent as firing events to sinks.

A one-shot run has no alert state, so every non-OK result is news: one firing event each, with
`since` = now. Durable sinks keep what they could not deliver within `shutdown_timeout`; the
daemon (or the next `--once --notify`) delivers it later.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from poolwatch.config import Config
from poolwatch.model import Event, Severity, now_utc
from poolwatch.once import Result
from poolwatch.sinks import Sink


def firing_events(results: Sequence[Result], host: str, now: datetime | None = None) -> list[Event]:
    moment = now or now_utc()
    return [
        Event(
            status="firing",
            alert=result.alert or result.reading.check,
            severity="critical" if result.severity == Severity.CRITICAL else "warning",
            source=result.reading.source,
            instance=result.reading.instance,
            check=result.reading.check,
            value=result.reading.value,
            unit=result.reading.unit,
            threshold=result.threshold,
            limit=result.reading.limit,
            labels=result.reading.labels,
            since=moment,
            message=result.message,
            host=host,
            time=moment,
        )
        for result in results
        if result.severity != Severity.OK
    ]


async def notify(config: Config, sinks: Sequence[Sink], events: Sequence[Event]) -> None:
    """Start the sinks, hand them the events, close them within `shutdown_timeout`."""
    started: list[Sink] = []
    try:
        for sink in sinks:
            await sink.start()
            started.append(sink)
        for event in events:
            for sink in started:
                await sink.send(event)
    finally:
        for sink in started:
            await sink.close(config.shutdown_timeout)
