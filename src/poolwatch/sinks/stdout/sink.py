"""stdout sink: each event as one log line (the event object plus `level`), for `docker logs`."""

from __future__ import annotations

from typing import Any

from poolwatch.core.model import Event
from poolwatch.core.notices import Notice
from poolwatch.logs import get_logger


def log_level(event: Event) -> str:
    """Resolved is news, not trouble: info. Firing: warning or error by severity."""
    if event.status == "resolved":
        return "info"
    return "error" if event.severity == "critical" else "warning"


def log_name(event: Event) -> str:
    if event.reminder:
        return "alert_reminder"
    return "alert_firing" if event.status == "firing" else "alert_resolved"


class StdoutSink:
    name = "stdout"
    records_muted = True

    def __init__(self, logger: Any | None = None) -> None:
        self._log = logger or get_logger()

    async def start(self) -> None:
        return None

    async def send(self, event: Event) -> None:
        getattr(self._log, log_level(event))(log_name(event), **event.to_dict())

    async def announce(self, notice: Notice) -> None:
        self._log.info(notice.log_name, **notice.to_dict())

    async def close(self, grace: float) -> None:
        return None
