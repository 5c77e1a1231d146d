"""The durable queue on its own: order, persistence across reopen, dead letters, bounds."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from poolwatch.sinks.durable.queue import DurableQueue, QueueError


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def make(path: Path, clock: Clock, max_items: int = 100, max_age: float = 3600.0) -> DurableQueue:
    return DurableQueue(path, "test", max_items=max_items, max_age=max_age, clock=clock)


async def test_order_survives_reopen_and_items_leave_only_when_removed(tmp_path: Path) -> None:
    clock = Clock()
    queue = make(tmp_path / "q.sqlite3", clock)
    await queue.open()
    for n in range(3):
        await queue.put(f"id{n}", f"body{n}".encode())
    head = await queue.head()
    assert head is not None
    await queue.remove(head)
    await queue.close()

    again = make(tmp_path / "q.sqlite3", clock)
    await again.open()
    assert again.depth == 2
    item = await again.head()
    assert item is not None
    assert (item.key, item.body) == ("id1", b"body1")
    await again.close()


async def test_second_owner_is_refused(tmp_path: Path) -> None:
    clock = Clock()
    first = make(tmp_path / "q.sqlite3", clock)
    await first.open()
    with pytest.raises(QueueError, match="in use"):
        await make(tmp_path / "q.sqlite3", clock).open()
    await first.close()


async def test_dead_letter_keeps_status_and_snippet_and_unblocks(tmp_path: Path) -> None:
    queue = make(tmp_path / "q.sqlite3", Clock())
    await queue.open()
    await queue.put("bad", b"{}")
    await queue.put("good", b"{}")
    head = await queue.head()
    assert head is not None
    await queue.dead_letter(head, 400, "HTTP 400", "x" * 2000)
    after = await queue.head()
    assert after is not None
    assert after.key == "good"
    [letter] = await queue.dead_letters()
    assert (letter.key, letter.status, len(letter.response)) == ("bad", 400, 512)
    await queue.close()


async def test_cap_and_age_drop_oldest_first_and_say_how_many(tmp_path: Path) -> None:
    clock = Clock()
    queue = make(tmp_path / "q.sqlite3", clock, max_items=3, max_age=50)
    await queue.open()
    with capture_logs() as logs:
        for n in range(5):
            await queue.put(f"id{n}", b"{}")
            clock.now += 20
        assert queue.depth == 3
        head = await queue.head()
        assert head is not None
        assert head.key == "id2"
        # id2 is 60 s old, id3 40 s and id4 20 s: only id2 is past max_age (50 s)
        assert await queue.expire() == 1
    dropped = [entry for entry in logs if entry["event"] == "queue_dropped"]
    assert [(d["count"], d["reason"], d["log_level"]) for d in dropped] == [
        (1, "max_queue", "error"),
        (1, "max_queue", "error"),
        (1, "max_age", "error"),
    ]
    assert queue.dropped == 3
    assert queue.oldest_age() == 40
    await queue.close()
