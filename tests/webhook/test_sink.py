"""The webhook sink in-process against the real receiver: headers, auth, stats, no secret logged."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import subprocess
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs
from tests.eventually import eventually
from tests.factories import HOLDERS_CONTEXT, make_event
from tests.net import free_port
from tests.webhook.conftest import SECRET
from tests.webhook.receiver import Answer, Receiver

from poolwatch.core.model import Event, now_utc
from poolwatch.sinks.stdout.sink import StdoutSink
from poolwatch.sinks.webhook.settings import WebhookSettings
from poolwatch.sinks.webhook.sink import WebhookSink

pytestmark = pytest.mark.integration


def event(n: int) -> Event:
    return make_event(value=160.0 + n, time=now_utc())


def hook(url: str, **extra: Any) -> WebhookSettings:
    return WebhookSettings.model_validate(
        {"name": "audit", "url": url, "retry_initial": "50ms", "retry_max": "200ms", **extra}
    )


async def test_signed_bearer_headers_in_order_and_stats(
    tmp_path: Path, receiver: Receiver, check_request: Any
) -> None:
    config = hook(
        receiver.url, secret=SECRET, bearer_token="tok-123456", headers={"x-team": "database"}
    )
    sink = WebhookSink(config, tmp_path)
    await sink.start()
    sent = [event(n) for n in range(5)]
    for item in sent:
        await sink.send(item)
    await eventually(lambda: len(receiver.requests) == 5, within=10)
    await sink.close(2)
    assert [r.id for r in receiver.requests] == [e.id for e in sent]
    for request in receiver.requests:
        check_request(request)
        assert request.headers["authorization"] == "Bearer tok-123456"
        assert request.headers["x-team"] == "database"
        assert request.headers["content-type"] == "application/json"
    stats = sink.stats()
    assert (stats.depth, stats.delivered, stats.oldest_age_seconds) == (0, 5, None)


async def test_basic_auth(tmp_path: Path, receiver: Receiver) -> None:
    sink = WebhookSink(hook(receiver.url, username="audit", password="pw-secret"), tmp_path)
    await sink.start()
    await sink.send(event(0))
    await eventually(lambda: len(receiver.requests) == 1, within=10)
    await sink.close(2)
    expected = base64.b64encode(b"audit:pw-secret").decode()
    assert receiver.requests[0].headers["authorization"] == f"Basic {expected}"
    assert "webhook-signature" not in receiver.requests[0].headers


async def test_failures_are_visible_and_never_show_a_secret(
    tmp_path: Path, receiver: Receiver
) -> None:
    receiver.script.extend([Answer(503), Answer(503)])
    url = receiver.url.replace("http://", "http://audit:url-pass-1@")
    sink = WebhookSink(hook(url, bearer_token="tok-abcdef"), tmp_path)
    with capture_logs() as logs:
        await sink.start()
        await sink.send(event(0))
        await eventually(lambda: sink.stats().failures == 2, within=10)
        stats = sink.stats()
        assert (stats.depth, stats.last_error) == (1, "HTTP 503")
        await eventually(lambda: sink.stats().depth == 0, within=10)
        await sink.close(2)
    text = json.dumps(logs, default=str)  # as the sink logged them, before the redaction net
    failed = [entry for entry in logs if entry["event"] == "delivery_failed"]
    assert [f["attempt"] for f in failed] == [1, 2]
    assert failed[0]["depth"] == 1
    assert any(entry["event"] == "delivery_recovered" for entry in logs)
    for secret in ("url-pass-1", "tok-abcdef"):
        assert secret not in text
    assert sink.stats().delivered == 1


def make_pki(directory: Path) -> None:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, with openssl."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    d = str(directory)

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=30)

    run(
        "req",
        "-x509",
        *ec,
        "-keyout",
        f"{d}/ca.key",
        "-out",
        f"{d}/ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=poolwatch-test-ca",
    )
    for name, extension in (("server", "subjectAltName=IP:127.0.0.1"), ("client", "")):
        run(
            "req",
            *ec,
            "-keyout",
            f"{d}/{name}.key",
            "-out",
            f"{d}/{name}.csr",
            "-subj",
            f"/CN={name}",
        )
        (directory / f"{name}.ext").write_text(extension + "\n")
        run(
            "x509",
            "-req",
            "-in",
            f"{d}/{name}.csr",
            "-CA",
            f"{d}/ca.pem",
            "-CAkey",
            f"{d}/ca.key",
            "-CAcreateserial",
            "-out",
            f"{d}/{name}.pem",
            "-days",
            "1",
            "-extfile",
            f"{d}/{name}.ext",
        )


async def test_mutual_tls_with_a_private_ca(tmp_path: Path) -> None:
    make_pki(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=tmp_path / "ca.pem")
    tls.load_cert_chain(tmp_path / "server.pem", tmp_path / "server.key")
    tls.verify_mode = ssl.CERT_REQUIRED
    receiver = Receiver(free_port(), tls)
    receiver.start()
    try:
        config = hook(
            receiver.url,
            ca_file=str(tmp_path / "ca.pem"),
            client_cert=str(tmp_path / "client.pem"),
            client_key=str(tmp_path / "client.key"),
        )
        sink = WebhookSink(config, tmp_path / "state")
        await sink.start()
        for n in range(5):
            await sink.send(event(n))
            # one at a time: each delivered before the next is sent
            await eventually(lambda n=n: len(receiver.requests) == n + 1, within=10)
        await sink.close(2)
    finally:
        receiver.stop()
    assert [r.status for r in receiver.requests] == [200] * 5
    # one TLS connection for all five: a 2xx keeps it alive (each used to pay a handshake)
    assert len({r.peer for r in receiver.requests}) == 1


async def test_410_says_the_endpoint_is_gone_and_goes_on(
    tmp_path: Path, receiver: Receiver
) -> None:
    receiver.script.append(Answer(410, body=b"gone"))
    sink = WebhookSink(hook(receiver.url), tmp_path)
    with capture_logs() as logs:
        await sink.start()
        first, second = event(0), event(1)
        await sink.send(first)
        await sink.send(second)
        await eventually(lambda: len(receiver.requests) == 2, within=10)
        await sink.close(2)
    assert [(r.id, r.status) for r in receiver.requests] == [(first.id, 410), (second.id, 200)]
    gone = [entry for entry in logs if entry["event"] == "webhook_endpoint_gone"]
    assert [(g["item"], g["log_level"]) for g in gone] == [(first.id, "error")]
    stats = sink.stats()
    assert (stats.dead_lettered, stats.delivered, stats.depth) == (1, 1, 0)


async def test_close_during_a_long_backoff_keeps_the_event_for_the_next_start(
    tmp_path: Path, receiver: Receiver, check_request: Any
) -> None:
    receiver.stop()
    config = hook(receiver.url, secret=SECRET, retry_initial="1m", retry_max="5m")
    sink = WebhookSink(config, tmp_path)
    await sink.start()
    kept = event(0)
    await sink.send(kept)
    await eventually(lambda: sink.stats().failures == 1, within=10)
    async with asyncio.timeout(10):  # the next retry (30-60 s) is past the grace: stop at once
        await sink.close(20)
    assert sink.stats().depth == 1

    receiver.start()
    again = WebhookSink(config, tmp_path)
    await again.start()
    await eventually(lambda: len(receiver.requests) == 1, within=10)
    await again.close(2)
    assert check_request(receiver.requests[0])["id"] == kept.id
    assert again.stats().depth == 0


async def test_the_body_is_the_event_with_its_context(
    tmp_path: Path, receiver: Receiver, check_request: Any
) -> None:
    sink = WebhookSink(hook(receiver.url, secret=SECRET), tmp_path)
    await sink.start()
    sent = make_event(context=HOLDERS_CONTEXT, time=now_utc())
    await sink.send(sent)
    await eventually(lambda: len(receiver.requests) == 1, within=10)
    await sink.close(2)
    body = check_request(receiver.requests[0])
    assert body == sent.to_dict()
    assert body["context"] == HOLDERS_CONTEXT


async def test_stdout_writes_the_event_with_its_context_as_is() -> None:
    sent = make_event(context=HOLDERS_CONTEXT)
    with capture_logs() as logs:
        await StdoutSink().send(sent)
    (line,) = logs
    assert line["context"] == HOLDERS_CONTEXT
    assert {k: v for k, v in line.items() if k not in ("event", "log_level")} == sent.to_dict()
