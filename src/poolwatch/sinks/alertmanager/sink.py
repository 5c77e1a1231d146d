"""Alertmanager sink: alert changes written ahead to a durable queue, then POSTed to one peer's
API v2 (`POST <url>/api/v2/alerts`, a JSON array), with periodic re-sends.

One sink per URL (`assemble` builds one for each peer of an HA cluster): each has its own queue,
delivery loop, client and re-send timer (`durable.sink.DurableHttp`, as the webhook's) and book,
so a peer that is down or slow delays nobody but itself, and each shows up in the metrics under
its own name. Alertmanager peers gossip silences and notifications, not
alerts: every peer must be sent every alert.

Queue items, drained in order by the generic loop of `delivery.py`:

    <event id>   the alerts one event changed (durable: a resolved alert survives a restart
                 until a peer took it once); firing alerts get `endsAt` when sent
    resend:<t>   a marker: "send the whole book as it is now". Queued every `resend_interval`,
                 only when the queue is empty: a peer that is away gets one marker, not one per
                 interval, and a marker never carries stale state. A marker left over from a
                 previous run sends that run's (rebuilt) book, which is harmless.

HTTP outcomes are those of the webhook sink (`durable.http.post`): 2xx delivered; connection
errors, timeouts, 408, 429, 5xx retried; other 4xx (Alertmanager's 400 for an invalid alert)
dead-lettered.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from poolwatch.core import secrets as redact
from poolwatch.core.model import Event, now_utc, rfc3339
from poolwatch.core.reasons import one_line
from poolwatch.logs import get_logger
from poolwatch.sinks.alertmanager.alertbook import (
    VALIDITY_RESENDS,
    Alert,
    AlertBook,
    stamp,
    watchdog,
)
from poolwatch.sinks.alertmanager.settings import AlertmanagerSettings
from poolwatch.sinks.durable import http
from poolwatch.sinks.durable.delivery import Delivered, DeliveryStats, Outcome, Reject, Retry
from poolwatch.sinks.durable.queue import Item
from poolwatch.sinks.durable.sink import DurableHttp

RESEND = "resend:"
_UNSAFE = re.compile(r"[^A-Za-z0-9.-]+")


def peer_name(url: str) -> str:
    """`host:port/path` of a peer, without scheme or credentials: names the sink in logs."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.hostname}{port}{parts.path}".rstrip("/")


def queue_path(state_dir: Path, url: str) -> Path:
    """One file per peer: readable, and unique through a hash of the credential-free URL."""
    parts = urlsplit(url)
    bare = f"{parts.scheme}://{peer_name(url)}"
    digest = hashlib.sha256(bare.encode()).hexdigest()[:8]
    slug = _UNSAFE.sub("_", peer_name(url)).strip("_")
    return state_dir / "queues" / f"alertmanager-{slug}-{digest}.sqlite3"


def encode(alerts: list[Alert]) -> bytes:
    return json.dumps(alerts, separators=(",", ":"), ensure_ascii=False).encode()


def build_client(
    config: AlertmanagerSettings, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """Basic auth, when wanted, comes from the URL's userinfo (httpx applies it per request);
    `transport` is for tests."""
    return http.client(timeout=config.timeout, ca_file=config.ca_file, transport=transport)


class AlertmanagerSink:
    """Sink protocol for one Alertmanager peer; `deliver` is the HTTP half, `resend` the timer's."""

    def __init__(
        self,
        config: AlertmanagerSettings,
        url: str,
        state_dir: Path,
        *,
        clock: Callable[[], datetime] = now_utc,
        transport: httpx.AsyncBaseTransport | None = None,
        watchdog_host: str | None = None,
        alive: Callable[[], bool] | None = None,
    ) -> None:
        self.config = config
        self.watchdog_host = watchdog_host
        """With `alive`: send `PoolwatchWatchdog` for this host with every re-send while
        `alive()` holds (the same rule as --healthcheck), so a hung poolwatch lets it expire."""
        self._alive = alive
        self._watchdog_since = clock()
        self.url = url.rstrip("/")
        self.endpoint = f"{self.url}/api/v2/alerts"
        self.name = f"alertmanager:{peer_name(url)}"
        self.clock = clock
        self.validity = VALIDITY_RESENDS * config.resend_interval
        self.book = AlertBook(config.teams, config.resolved_resend, config.generator_url)
        self.http = DurableHttp(
            self.name,
            queue_path(state_dir, url),
            self.deliver,
            lambda: build_client(config, transport),
            config,
        )
        self.queue, self.loop = self.http.queue, self.http.loop
        self._log = get_logger(sink=self.name)

    async def start(self) -> None:
        await self.http.start()
        self.http.every(self.config.resend_interval, self._resend, at_once=False)
        if self._watchdog() is not None:
            await self.resend()  # the watchdog at once, not one resend_interval later
        self._log.info(
            "alertmanager_ready",
            url=redact.url(self.url),
            depth=self.queue.depth,
            resend_interval=self.config.resend_interval,
        )

    async def send(self, event: Event) -> None:
        """Store the alerts this event changes; durable when it returns."""
        await self.http.put(event.id, encode(self.book.record(event)))

    async def resend(self) -> bool:
        """Queue a re-send marker if there is something to re-send and nothing already waiting."""
        self.book.forget(self.clock())
        if not (self.book.entries or self._watchdog()) or self.queue.depth:
            return False
        await self.http.put(f"{RESEND}{rfc3339(self.clock())}", b"")
        return True

    async def close(self, grace: float) -> None:
        await self.http.close(grace)

    def stats(self) -> DeliveryStats:
        return self.http.stats()

    def metrics(self) -> dict[str, float]:
        """For the metrics endpoint (`poolwatch_sink_<key>{sink}`): numbers only."""
        firing, resolved = self.book.counts()
        return {**self.stats().numbers(), "alerts_firing": firing, "alerts_resolved": resolved}

    def payload(self, item: Item) -> list[Alert]:
        """The alerts an item stands for, with `endsAt` of the firing ones as of now."""
        now = self.clock()
        if item.key.startswith(RESEND):
            dog = self._watchdog()
            extra = [dog] if dog is not None else []
            return stamp(self.book.snapshot(now) + extra, now, self.validity)
        alerts = json.loads(item.body)
        if not isinstance(alerts, list) or not all(isinstance(a, dict) for a in alerts):
            raise ValueError("not a JSON array of alerts")
        return stamp(alerts, now, self.validity)

    async def deliver(self, item: Item) -> Outcome:
        client = self.http.client
        if client is None:
            return Retry("sink not started")
        try:
            alerts = self.payload(item)
        except ValueError as exc:
            return Reject(f"unreadable queued payload: {exc}")
        if not alerts:
            return Delivered()
        return await http.post(client, self.endpoint, encode(alerts), deadline=self.config.timeout)

    def _watchdog(self) -> Alert | None:
        if self.watchdog_host is None or self._alive is None or not self._alive():
            return None
        return watchdog(self.watchdog_host, self._watchdog_since)

    async def _resend(self) -> None:
        try:
            await self.resend()
        except Exception as exc:  # the disk failed: the next interval tries again
            self._log.warning("resend_failed", reason=one_line(exc, named=True))
