"""Webhook sink: events written ahead to a durable queue, then POSTed in order, signed.

`send` only stores the event (one sqlite commit) and wakes the delivery loop (queue, loop, client
and the heartbeat's timer: `durable.sink.DurableHttp`); the HTTP part lives in `deliver`, which
turns one POST into an `Outcome` for the generic loop in `delivery.py`:

    2xx                               -> Delivered (the item leaves the queue)
    connection error, timeout,
    408, 429, 5xx                     -> Retry (backoff, or the server's Retry-After)
    other 3xx/4xx (410: endpoint gone) -> Reject (dead-letter table, error line, next item)
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from poolwatch.core.model import Event
from poolwatch.core.notices import Notice
from poolwatch.core.reasons import one_line
from poolwatch.logs import get_logger
from poolwatch.sinks.durable import http
from poolwatch.sinks.durable.delivery import DeliveryLoop, DeliveryStats, Outcome, Reject, Retry
from poolwatch.sinks.durable.queue import Item
from poolwatch.sinks.durable.sink import DurableHttp, MakeLoop
from poolwatch.sinks.webhook import signing
from poolwatch.sinks.webhook.settings import WebhookSettings
from poolwatch.sinks.webhook.signing import signing_key


def queue_path(state_dir: Path, name: str) -> Path:
    return state_dir / "queues" / f"webhook-{name}.sqlite3"


def encode(event: Event | Notice) -> bytes:
    """The exact bytes that are signed, stored and re-sent on every retry."""
    return json.dumps(event.to_dict(), separators=(",", ":"), ensure_ascii=False).encode()


def build_client(config: WebhookSettings) -> httpx.AsyncClient:
    """One pooled client per sink with the TLS, auth and header settings of its config."""
    basic = None
    if config.username is not None and config.password is not None:
        basic = (config.username, config.password.get_secret_value())
    return http.client(
        timeout=config.timeout,
        connect_timeout=config.connect_timeout,
        ca_file=config.ca_file,
        client_cert=config.client_cert,
        client_key=config.client_key,
        headers=config.header_values(),
        bearer_token=config.bearer_token.get_secret_value() if config.bearer_token else None,
        basic_auth=basic,
    )


class WebhookSink:
    """Sink protocol over a durable queue + delivery loop; `deliver` is the HTTP half."""

    def __init__(
        self,
        config: WebhookSettings,
        state_dir: Path,
        *,
        heartbeat: Callable[[], Notice | None] | None = None,
        make_loop: MakeLoop = DeliveryLoop,
    ) -> None:
        self.config = config
        self._heartbeat = heartbeat
        """Makes the `poolwatch.heartbeat/v1` to send every `config.heartbeat`; None while
        poolwatch is not healthy (a stuck collector loop), and then nothing is sent."""
        self._withheld = False
        self.heartbeats = {"heartbeats_sent": 0, "heartbeats_withheld": 0}
        self.name = f"webhook:{config.name}"
        self._key = signing_key(config.secret.get_secret_value()) if config.secret else None
        self.http = DurableHttp(
            self.name,
            queue_path(state_dir, config.name),
            self.deliver,
            lambda: build_client(config),
            config,
            make_loop=make_loop,
        )
        self.queue, self.loop = self.http.queue, self.http.loop
        self._log = get_logger(sink=self.name)

    async def start(self) -> None:
        await self.http.start()
        if self.config.heartbeat and self._heartbeat is not None:
            self.http.every(self.config.heartbeat, self._beat, at_once=True)
        stats = self.loop.stats()
        self._log.info(
            "webhook_ready",
            url=self.config.shown_url(),
            signed=self._key is not None,
            depth=stats.depth,
            oldest_age_seconds=stats.oldest_age_seconds,
        )

    async def send(self, event: Event) -> None:
        await self.http.put(event.id, encode(event))

    async def announce(self, notice: Notice) -> None:
        """Audit notices and heartbeats go through the same queue, signed the same way."""
        await self.http.put(notice.id, encode(notice))

    async def _beat(self) -> None:
        """One heartbeat, or none while poolwatch is not healthy (logged once per outage)."""
        assert self._heartbeat is not None
        beat = self._heartbeat()
        if beat is None:
            self.heartbeats["heartbeats_withheld"] += 1
            if not self._withheld:  # once per outage: the receiver's missing beat says the rest
                self._log.warning("heartbeat_withheld", reason="a collector loop is stuck")
            self._withheld = True
            return
        try:
            await self.announce(beat)
        except Exception as exc:  # the disk: the next interval tries again
            self._log.warning("heartbeat_failed", reason=one_line(exc, named=True))
        else:
            self.heartbeats["heartbeats_sent"] += 1
        self._withheld = False

    async def close(self, grace: float) -> None:
        await self.http.close(grace)

    def stats(self) -> DeliveryStats:
        return self.http.stats()

    def metrics(self) -> dict[str, float]:
        numbers = self.http.stats().numbers()
        if self.config.heartbeat:
            numbers.update(self.heartbeats)
        return numbers

    async def deliver(self, item: Item) -> Outcome:
        """POST one queued event; the signature is made fresh, id and body never change."""
        client = self.http.client
        if client is None:
            return Retry("sink not started")
        headers = signing.headers(self._key, item.key, int(time.time()), item.body)
        outcome = await http.post(
            client, self.config.url, item.body, deadline=self.config.timeout, headers=headers
        )
        if isinstance(outcome, Reject) and outcome.status == 410:
            self._log.error("webhook_endpoint_gone", url=self.config.shown_url(), item=item.key)
        return outcome
