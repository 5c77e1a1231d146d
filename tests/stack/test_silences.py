"""Silences end to end: a real daemon watching a real PostgreSQL, a real webhook receiver and a
real Alertmanager (Debian's package), with `poolwatch silence` run as an operator would."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from standardwebhooks.webhooks import Webhook

from tests.daemon import Daemon
from tests.eventually import eventually, eventually_sync
from tests.net import free_port
from tests.postgres.pgserver import Load, PgServer
from tests.stack.test_alertmanager import ALERT, Peer, daemon_env, started
from tests.webhook.conftest import SECRET
from tests.webhook.receiver import Receiver

pytestmark = pytest.mark.integration

WATCHDOG = "PoolwatchWatchdog"


def schema(name: str) -> Any:
    text = resources.files("poolwatch").joinpath(f"schema/{name}").read_text()
    loaded = json.loads(text)
    cls = jsonschema.validators.validator_for(loaded)
    cls.check_schema(loaded)
    return cls(loaded, format_checker=cls.FORMAT_CHECKER)


SCHEMAS = {
    "poolwatch.event/v1": schema("event.v1.json"),
    "poolwatch.silence/v1": schema("silence.v1.json"),
    "poolwatch.heartbeat/v1": schema("heartbeat.v1.json"),
}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver(free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def peer(tmp_path: Path) -> Iterator[Peer]:
    one = Peer(tmp_path / "am")
    one.start()
    yield one
    one.stop()


def bodies(receiver: Receiver) -> list[dict[str, Any]]:
    """Every webhook body so far, signature verified and schema validated, in arrival order."""
    verifier = Webhook(SECRET)
    out = []
    for request in receiver.answered():
        body = verifier.verify(request.body, request.headers)
        SCHEMAS[body["schema"]].validate(body)
        out.append(body)
    return out


def silence(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "poolwatch", "silence", *args],
        env={"PATH": os.environ.get("PATH", ""), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


async def alerts(peer: Peer, name: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(
            f"{peer.url}/api/v2/alerts", params={"filter": f'alertname="{name}"'}
        )
    response.raise_for_status()
    found: list[dict[str, Any]] = response.json()
    return found


def is_pool_event(body: dict[str, Any]) -> bool:
    return body["schema"] == "poolwatch.event/v1" and body["alert"] == ALERT


def pool_line(status: str, *, muted: bool) -> Any:
    def match(line: dict[str, Any]) -> bool:
        if line.get("schema") != "poolwatch.event/v1" or line.get("alert") != ALERT:
            return False
        return line["status"] == status and bool(line.get("muted")) == muted

    return match


async def test_a_silence_keeps_alerts_off_webhook_and_alertmanager_until_it_expires(
    pg: PgServer, load: Load, peer: Peer, receiver: Receiver, tmp_path: Path
) -> None:
    config = tmp_path / "poolwatch.yaml"
    config.write_text(
        "alertmanager:\n"
        f"  urls: [{peer.url}]\n"
        "  resend_interval: 1s\n"
        "  retry_initial: 100ms\n"
        "webhooks:\n"
        f"  - {{name: audit, url: '{receiver.url}', secret: '{SECRET}', heartbeat: 1s,"
        " retry_initial: 100ms}\n"
    )
    env = daemon_env(pg, tmp_path, POOLWATCH_CONFIG=str(config))
    with Daemon(env) as daemon:
        daemon.wait_for(started)
        # the watchdog is active in Alertmanager, as kube-prometheus's Watchdog
        (dog,) = await eventually(lambda: alerts(peer, WATCHDOG), "the watchdog", 60, 0.3)
        assert dog["labels"]["severity"] == "none"
        assert dog["status"]["state"] == "active"

        ident = silence(
            env,
            "add",
            "--match",
            f"alert={ALERT}",
            "--match",
            "instance=main",
            "--for",
            "2h",
            "--comment",
            "reindex",
            "--author",
            "tester",
        )
        created = daemon.wait_for(lambda line: line.get("event") == "silence_created")
        assert created["silence"] == ident
        assert created["matchers"] == [f"alert={ALERT}", "instance=main"]
        SCHEMAS["poolwatch.silence/v1"].validate(created)

        # fires and resolves inside the silence: stdout has both, marked muted
        await load.open(8)
        firing = daemon.wait_for(pool_line("firing", muted=True))
        assert firing["muted_by"] == ident
        SCHEMAS["poolwatch.event/v1"].validate(firing)
        await load.close()
        daemon.wait_for(pool_line("resolved", muted=True))

        # fires again, still inside the silence
        await load.open(8)
        daemon.wait_for(pool_line("firing", muted=True))
        # Alertmanager has since been sent the watchdog again (its queue is in order): anything
        # queued for it before that has arrived, and no pool alert is among it
        (before,) = await alerts(peer, WATCHDOG)
        await eventually(lambda: _later(peer, before["endsAt"]), "the watchdog sent again", 60, 0.3)
        assert await alerts(peer, ALERT) == []

        silence(env, "expire", ident)
        expired = daemon.wait_for(lambda line: line.get("event") == "silence_expired")
        assert expired["silence"] == ident
        # the still-firing alert is delivered when the silence ends
        released = daemon.wait_for(pool_line("firing", muted=False))
        (alert,) = await eventually(lambda: alerts(peer, ALERT), "the released alert", 60, 0.3)
        assert alert["labels"]["instance"] == "main"

        eventually_sync(
            lambda: any(b["id"] == released["id"] for b in bodies(receiver)),
            "the released alert at the webhook",
            60,
            0.05,
        )
        seen = bodies(receiver)
        actions = [b.get("action") for b in seen if b["schema"] == "poolwatch.silence/v1"]
        assert actions == ["created", "expired"]
        start = next(i for i, b in enumerate(seen) if b.get("action") == "created")
        end = next(i for i, b in enumerate(seen) if b.get("action") == "expired")
        # nothing of the pool alert reached the webhook while silenced (fire, resolve, fire)
        assert not [b for b in seen[start:end] if is_pool_event(b)]
        assert [b["status"] for b in seen[end:] if is_pool_event(b)] == ["firing"]

        # heartbeats: signed (verified above), one schema, at the interval
        beats = [b for b in seen if b["schema"] == "poolwatch.heartbeat/v1"]
        assert len(beats) >= 3
        times = [datetime.fromisoformat(b["time"].replace("Z", "+00:00")) for b in beats]
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
        assert min(gaps) >= 0.9  # never faster than `heartbeat: 1s`
        assert beats[-1]["collectors"] == [
            {
                "source": "postgres",
                "instance": "main",
                "last_success": beats[-1]["collectors"][0]["last_success"],
            }
        ]
        assert beats[-1]["collectors"][0]["last_success"] is not None

        await load.close()
        await eventually(lambda: _empty(peer), "no pool alert in Alertmanager", 60, 0.3)
        daemon.wait_for(pool_line("resolved", muted=False))


async def _later(peer: Peer, ends_at: str) -> bool:
    found = await alerts(peer, WATCHDOG)
    return bool(found) and found[0]["endsAt"] > ends_at


async def _empty(peer: Peer) -> bool:
    return await alerts(peer, ALERT) == []
