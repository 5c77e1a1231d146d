"""`poolwatch --once --notify`: non-OK results reach the webhook as signed firing events."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from tests.webhook.receiver import Receiver

pytestmark = pytest.mark.integration


def test_once_notify_sends_the_non_ok_results(
    receiver: Receiver, daemon_factory: Any, check_request: Any
) -> None:
    daemon = daemon_factory(url=receiver.url)
    done = subprocess.run(
        [sys.executable, "-m", "poolwatch", "--once", "--notify", "--format", "json"],
        env=daemon.env(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    # thresholds at 0: at least a warning; a busy CPU sample may even be critical
    assert done.returncode in (1, 2), done.stdout + done.stderr
    results = [json.loads(line) for line in done.stdout.splitlines()]
    warned = {(r["check"], r["instance"]) for r in results if r["severity"] != "ok"}
    bodies = [check_request(request) for request in receiver.requests]
    assert {(b["check"], b["instance"]) for b in bodies} == warned
    assert {b["status"] for b in bodies} == {"firing"}
    assert daemon.queue_depth() == 0


def test_notify_needs_once() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "poolwatch", "--notify"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 3  # a usage error is UNKNOWN
    assert b"--notify only goes with --once" in done.stderr
