"""The durable queue under disk trouble, on real filesystems (tmpfs mounts of a fixed size):
a full disk after a 2xx, a small state volume, a damaged or deleted queue file."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs
from tests.eventually import eventually
from tests.factories import make_event
from tests.fakeclock import FakeClock
from tests.webhook.receiver import Answer, Receiver

from poolwatch.core.evaluate import Evaluator
from poolwatch.core.model import now_utc
from poolwatch.runtime.metrics import registry_for
from poolwatch.runtime.runner import Runner
from poolwatch.sinks.durable.delivery import DeliveryLoop
from poolwatch.sinks.webhook.settings import WebhookSettings
from poolwatch.sinks.webhook.sink import WebhookSink, queue_path

pytestmark = pytest.mark.integration


@contextlib.contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A real filesystem of `size`, mounted for the test and always unmounted."""
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(directory: Path) -> Path:
    """Take every free byte of the filesystem, so that the next allocation fails (ENOSPC)."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 65536)
    except OSError:
        pass  # full
    finally:
        os.close(fd)
    return filler


def hook(url: str) -> WebhookSettings:
    return WebhookSettings.model_validate(
        {"name": "audit", "url": url, "retry_initial": "50ms", "retry_max": "200ms"}
    )


def wal_bytes(queue: Path) -> int:
    wal = Path(f"{queue}-wal")
    return wal.stat().st_size if wal.exists() else 0


def starts_with(path: Path, prefix: bytes) -> bool:
    return path.read_bytes().startswith(prefix)


def failures(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in logs if line["event"] == "delivery_failed"]


async def close_on(clock: FakeClock, sink: WebhookSink) -> None:
    """`close(2)` of a sink whose loop runs on `clock`: its grace passes as the clock moves."""
    closing = asyncio.ensure_future(sink.close(2))

    async def closed() -> bool:
        await clock.advance(0.5)
        return closing.done()

    await eventually(closed, "the sink closed within its grace on the clock")
    closing.result()


async def test_a_full_disk_after_a_2xx_sends_no_duplicate_storm(
    tmp_path: Path, receiver: Receiver
) -> None:
    """Reproduced: the queue could not record a 2xx (disk full), so the same event was POSTed
    again every 0.25-0.5 s for as long as the disk stayed full. Now the answer is recorded again
    with backoff, and the event is POSTed exactly once.

    The delivery loop runs on a fake clock: "as long as the disk stayed full" is ten retries of
    the settle, each of which used to be a POST, not a real-time window."""
    receiver.script.append(Answer(503))
    clock = FakeClock()
    on_clock = functools.partial(
        DeliveryLoop, monotonic=clock.monotonic, wall=clock.wall, sleep=clock.sleep
    )

    async def step() -> None:
        """Past the longest backoff (retry_max 200ms): the loop's next try, run to its end."""
        await clock.advance(0.2)
        await clock.parked()

    async def step_until(done: Callable[[], bool], what: str) -> None:
        async def stepped() -> bool:
            await step()
            return done()

        await eventually(stepped, what)

    with tmpfs(tmp_path / "state", "2m") as state:
        sink = WebhookSink(hook(receiver.url), state, make_loop=on_clock)
        await sink.start()
        try:
            event = make_event(time=now_utc())
            await sink.send(event)
            # the 503: the event stays queued, the loop backs off
            await eventually(lambda: len(receiver.requests) == 1, within=20)
            await clock.parked()
            filler = fill(state)
            await step()
            await eventually(lambda: len(receiver.answered(200)) == 1, within=20)
            with capture_logs() as logs:
                await step_until(
                    lambda: len(failures(logs)) >= 10, "ten retries of the settle on a full disk"
                )
            assert [r.id for r in receiver.requests] == [event.id, event.id]
            # the settle kept failing, and said so ...
            assert all("queue" in line["reason"] for line in failures(logs))
            filler.unlink()
            # ... until there is room again
            await step_until(lambda: sink.stats().depth == 0, "the 2xx recorded once there is room")
            await clock.advance(60)  # a minute more on the clock: nothing is sent again
            await clock.parked()
            assert len(receiver.answered(200)) == 1
            assert [r.id for r in receiver.requests] == [event.id, event.id]
        finally:
            await close_on(clock, sink)


async def test_a_small_state_volume_loses_nothing(tmp_path: Path, receiver: Receiver) -> None:
    """Reproduced: the WAL grew ~12 KB per event and was never truncated, so a 512 KiB volume
    lost events with a healthy receiver. Now its footprint is bounded and given back."""
    with tmpfs(tmp_path / "state", "512k") as state:
        sink = WebhookSink(hook(receiver.url), state)
        await sink.start()
        sent = []
        try:
            for _ in range(60):
                event = make_event(time=now_utc())
                sent.append(event.id)
                await sink.send(event)
            await eventually(lambda: len(receiver.answered(200)) == len(sent), within=60)
            await eventually(lambda: sink.stats().depth == 0, within=20)
        finally:
            await sink.close(2)
        wal_size = wal_bytes(queue_path(state, "audit"))
    assert [r.id for r in receiver.requests] == sent
    assert sink.stats().dropped == 0
    assert wal_size == 0  # drained: the WAL was truncated


async def test_a_damaged_queue_file_is_moved_aside_and_delivery_goes_on(
    tmp_path: Path, receiver: Receiver
) -> None:
    """Reproduced: a damaged queue file crashed the daemon. Now it is moved aside (named in an
    error line) and a fresh queue delivers."""
    path = queue_path(tmp_path, "audit")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not a database, it is what a bad disk left" * 100)
    sink = WebhookSink(hook(receiver.url), tmp_path)
    with capture_logs() as logs:
        await sink.start()
    try:
        (damaged,) = [line for line in logs if line["event"] == "queue_damaged"]
        assert damaged["log_level"] == "error"
        assert starts_with(Path(damaged["moved_to"]), b"this is not a database")
        event = make_event(time=now_utc())
        await sink.send(event)
        await eventually(lambda: [r.id for r in receiver.answered(200)] == [event.id], within=20)
    finally:
        await sink.close(2)


async def test_a_queue_file_deleted_while_running_is_recreated(
    tmp_path: Path, receiver: Receiver
) -> None:
    receiver.script.extend([Answer(503)] * 3)
    sink = WebhookSink(hook(receiver.url), tmp_path)
    await sink.start()
    try:
        first = make_event(time=now_utc())
        await sink.send(first)
        await eventually(lambda: len(receiver.answered(200)) == 1, within=20)
        path = queue_path(tmp_path, "audit")
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{path}{suffix}")
        second = make_event(time=now_utc())
        with capture_logs() as logs:
            await sink.send(second)
            await eventually(lambda: len(receiver.answered(200)) == 2, within=20)
        assert any(line["event"] == "queue_file_replaced" for line in logs)
        assert path.exists()
        assert [r.id for r in receiver.answered(200)] == [first.id, second.id]
    finally:
        await sink.close(2)


async def test_an_event_no_sink_could_store_is_counted_and_named(
    tmp_path: Path, receiver: Receiver
) -> None:
    """Reproduced: events the queue could not store (disk full) counted in no sink metric; now
    each is logged with its id and counted by sink and reason in /metrics."""
    with tmpfs(tmp_path / "state", "1m") as state:
        sink = WebhookSink(hook(receiver.url), state)
        runner = Runner([], [sink], Evaluator("test"))
        await runner.sinks.start()
        try:
            filler = fill(state)
            event = make_event(time=now_utc())
            with capture_logs() as logs:
                await runner.pipeline.deliver([event])
            filler.unlink()
            text = generate_latest(registry_for(runner.view, lambda: list(runner.sinks))).decode()
        finally:
            await sink.close(1)
    (failed,) = [line for line in logs if line["event"] == "sink_failed"]
    assert (failed["event_id"], failed["sink"]) == (event.id, "webhook:audit")
    lost = {
        (s.labels["sink"], s.labels["reason"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "poolwatch_sink_events_lost_total"
    }
    assert lost == {("webhook:audit", "OperationalError"): 1.0}
    assert receiver.requests == []
