"""Liveness: the heartbeat file the daemon writes and `poolwatch --healthcheck` judges."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from poolwatch import cli
from poolwatch.config.rules import Rules
from poolwatch.core.evaluate import Evaluator
from poolwatch.core.model import Reading
from poolwatch.runtime import heartbeat
from poolwatch.runtime.runner import Runner
from tests.eventually import eventually


class Ticking:
    """A collector that answers at once with nothing."""

    source = "fake"
    instance = "a"
    interval = 10.0
    timeout = 5.0
    rules: Rules = {}  # noqa: RUF012 - the Collector protocol's attribute

    async def collect(self) -> Sequence[Reading]:
        return []

    async def close(self) -> None:
        return None


def ticking(last_turn: float | None = None) -> Runner:
    """A runner with one `Ticking` collector that (when given) last turned at `last_turn`."""
    runner = Runner([Ticking()], [], Evaluator("test"), wall=lambda: last_turn or 0.0)
    if last_turn is not None:
        runner.pipeline.turned("fake:a")
    return runner


def beat_at(path: Path, now: float, last_turn: float) -> heartbeat.Heartbeat:
    beat = heartbeat.Heartbeat(path, ticking(last_turn).view, clock=lambda: now)
    beat.write()
    return beat


def test_fresh_heartbeat_with_turning_collectors_is_healthy(tmp_path: Path) -> None:
    path = tmp_path / "heartbeat"
    beat_at(path, now=1000.0, last_turn=995.0)

    healthy, reason = heartbeat.check(path, now=1004.0)

    assert healthy, reason
    data = json.loads(path.read_text())
    assert data["schema"] == "poolwatch.runtime.heartbeat/v1"
    # three intervals of 10 s plus the 5 s timeout
    assert data["collectors"] == {"fake:a": {"last_turn": 995.0, "stale_after": 35.0}}


@pytest.mark.parametrize(
    ("now", "last_turn", "why"),
    [
        (1016.0, 1000.0, "heartbeat is 16s old"),  # the event loop stopped writing (3 x 5 s)
        (1000.0, 964.0, "fake:a last completed a poll 36s ago (limit 35s)"),  # a stuck loop
    ],
)
def test_stale_heartbeat_or_stuck_collector_is_unhealthy(
    tmp_path: Path, now: float, last_turn: float, why: str
) -> None:
    path = tmp_path / "heartbeat"
    beat_at(path, now=1000.0, last_turn=last_turn)

    healthy, reason = heartbeat.check(path, now=now)

    assert not healthy
    assert why in reason


def test_missing_or_garbled_heartbeat_is_unhealthy(tmp_path: Path) -> None:
    path = tmp_path / "heartbeat"
    assert heartbeat.check(path)[1].startswith("no heartbeat")
    path.write_text('{"time": "soon"}')
    assert not heartbeat.check(path)[0]


def test_a_collector_that_never_turned_counts_from_start(tmp_path: Path) -> None:
    path = tmp_path / "heartbeat"
    heartbeat.Heartbeat(path, ticking().view, clock=lambda: 1000.0).write()

    assert heartbeat.check(path, now=1030.0)[1].startswith("heartbeat is 30s old")
    assert json.loads(path.read_text())["collectors"]["fake:a"]["last_turn"] == 1000.0


def test_unwritable_state_dir_is_logged_once_and_removal_is_quiet(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    beat = heartbeat.Heartbeat(blocker / "heartbeat", Runner([], [], Evaluator("test")).view)
    beat.write()
    beat.write()
    beat.remove()
    assert not (blocker / "heartbeat").exists()


async def test_runner_records_each_completed_turn() -> None:
    runner = Runner([Ticking()], [], Evaluator("test"))
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        await eventually(lambda: "fake:a" in runner.view.stats().last_turn, "a turn", within=10)
    finally:
        stop.set()
        await task


def test_healthcheck_flag_exit_codes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POOLWATCH_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("POOLWATCH_CONFIG", raising=False)
    assert cli.main(["--healthcheck"]) == 1
    assert capsys.readouterr().out.startswith("unhealthy: no heartbeat")

    heartbeat.Heartbeat(tmp_path / "heartbeat", ticking().view).write()
    assert cli.main(["--healthcheck"]) == 0
    assert capsys.readouterr().out.startswith("healthy: alive")

    # a bad config is UNKNOWN in every mode (issue 24); Docker counts any code but 0 as failed
    monkeypatch.setenv("POOLWATCH_INTERVAL", "soon")
    assert cli.main(["--healthcheck"]) == 3
