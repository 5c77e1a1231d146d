"""`poolwatch --once --notify`: the non-OK results of one check, as firing events for the sinks.

A one-shot run has no alert state, so every non-OK result is news: one firing event each, with
`since` = now. The runner delivers them; durable sinks keep what they could not deliver within
`shutdown_timeout`, and the daemon (or the next `--once --notify`) delivers it later.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from poolwatch.core.model import Event, Severity, now_utc
from poolwatch.once.results import Result


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
            context=result.reading.context,
        )
        for result in results
        if result.severity != Severity.OK
    ]
