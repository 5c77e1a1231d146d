"""The runner's promises: every collector on its own clock, failures turned into data, overruns
skipped with a warning, and a bounded shutdown with every sink closed at once.

The collectors here are small in-test implementations of the `Collector` protocol, not mocks of a
server: the runner's contract is with that protocol, and these make slowness and failure exact.
The poll loops run on a `FakeClock` (the scheduler's injected clock and sleep): counts are exact
and no assertion waits on real time. Only a collector's timeout is real (`asyncio.timeout`), and
what follows it is awaited with a bounded wait.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from types import SimpleNamespace
from typing import Any

import structlog

from poolwatch.config.load import load
from poolwatch.core.evaluate import Evaluator
from poolwatch.core.model import Reading
from poolwatch.runtime.runner import Runner
from poolwatch.runtime.settings import RuntimeSettings
from poolwatch.sources import Collector, Planned
from tests.fakeclock import FakeClock
from tests.recording import RecordingSink

RULES = load(None, {}).postgres.rules


class ScriptedCollector:
    """Answers from a script: a number is a connection count, an exception is raised, `sleep`
    seconds on the fake clock make it slow, `hang` makes it never answer (in real time)."""

    source = "postgres"
    rules = RULES

    def __init__(
        self,
        instance: str,
        interval: float,
        timeout: float = 1.0,
        value: float = 10,
        sleep: float = 0.0,
        error: Exception | None = None,
        clock: FakeClock | None = None,
        hang: bool = False,
    ) -> None:
        self.instance, self.interval, self.timeout = instance, interval, timeout
        self.value, self.sleep, self.error = value, sleep, error
        self.clock, self.hang = clock, hang
        self.polls = 0
        self.closed = False

    async def collect(self) -> Sequence[Reading]:
        self.polls += 1
        if self.hang:
            await asyncio.Event().wait()
        if self.sleep and self.clock is not None:
            await self.clock.sleep(self.sleep)
        if self.error is not None:
            raise self.error
        return [
            Reading(self.source, self.instance, "up", 1, "bool"),
            Reading(self.source, self.instance, "connections", self.value, "connections", 197),
        ]

    def reconfigure(self, settings: Any) -> None:
        self.rules, self.interval, self.timeout = (
            settings.rules,
            settings.interval,
            settings.timeout,
        )

    async def close(self) -> None:
        self.closed = True


class Running:
    """A runner on a fake clock, polling from `start` until `stop`."""

    def __init__(
        self,
        collectors: Sequence[Collector],
        sinks: Sequence[RecordingSink] = (),
        shutdown_timeout: float = 5.0,
    ) -> None:
        self.clock = FakeClock()
        self.runner = Runner(
            collectors,
            list(sinks),
            Evaluator("test"),
            settings=RuntimeSettings(shutdown_timeout=shutdown_timeout),
            monotonic=self.clock.monotonic,
            wall=self.clock.wall,
            sleep=self.clock.sleep,
        )
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self.runner.run(self._stop))
        await self.clock.advance(0)

    async def stop(self) -> None:
        assert self._task is not None
        self._stop.set()
        await asyncio.wait_for(self._task, timeout=10)  # bounded: a stuck stop fails the test


async def run_for(running: Running, seconds: float) -> None:
    await running.start()
    await running.clock.advance(seconds)
    await running.stop()


async def test_a_hung_collector_becomes_down_without_delaying_the_others() -> None:
    hung = ScriptedCollector("hung", interval=0.2, timeout=0.3, hang=True)
    fast = ScriptedCollector("fast", interval=0.1)
    sink = RecordingSink()
    running = Running([hung, fast], [sink])
    with structlog.testing.capture_logs() as logs:
        await running.start()
        await running.clock.advance(1.0)
        assert fast.polls == 11  # kept its own clock (0, 0.1, ... 1.0) while the other hung
        assert hung.polls == 1
        down = await sink.event(lambda e: e.alert == "PostgreSQLDown")  # the real timeout
        await running.stop()
    assert down.instance == "hung"
    assert "no answer within 0.3s" in down.message
    assert any(line["event"] == "collection_failed" for line in logs)
    assert hung.closed
    assert fast.closed


async def test_an_exception_is_data_and_the_loop_goes_on() -> None:
    broken = ScriptedCollector("main", interval=0.1, error=RuntimeError("boom"))
    sink = RecordingSink()
    await run_for(Running([broken], [sink]), 0.45)
    assert broken.polls == 5
    assert [e.alert for e in sink.events] == ["PostgreSQLDown"]  # once, not per poll
    assert "RuntimeError: boom" in sink.events[0].message


async def test_recovery_resolves_down() -> None:
    flaky = ScriptedCollector("main", interval=0.1, error=ConnectionError("refused"))
    sink = RecordingSink()
    running = Running([flaky], [sink])
    await running.start()
    await running.clock.advance(0.35)
    flaky.error = None
    await running.clock.advance(0.5)
    await running.stop()
    assert [(e.alert, e.status) for e in sink.events] == [
        ("PostgreSQLDown", "firing"),
        ("PostgreSQLDown", "resolved"),
    ]


async def test_overrun_ticks_are_skipped_with_a_warning() -> None:
    slow = ScriptedCollector("slow", interval=0.1, timeout=2, sleep=0.25)
    running = Running([slow], [RecordingSink()])
    slow.clock = running.clock
    with structlog.testing.capture_logs() as logs:
        await run_for(running, 0.9)
    overruns = [line for line in logs if line["event"] == "poll_overrun"]
    # a poll takes 0.25 s of a 0.1 s interval: ticks 0.1 and 0.2 are skipped, the next poll
    # starts at 0.3; polls at 0, 0.3, 0.6, 0.9
    assert [line["skipped_ticks"] for line in overruns] == [2, 2, 2]
    assert slow.polls == 4  # skipped, not queued up behind each other
    assert running.runner.view.stats().overruns == {"postgres:slow": 6}


async def test_the_loop_sleeps_only_what_is_left_of_the_interval() -> None:
    """A poll that takes part of the interval shortens the sleep after it: the next poll keeps
    the collector's clock (0, 1, 2, ...), it does not drift by the poll's duration."""
    starts: list[float] = []

    class Timed(ScriptedCollector):
        async def collect(self) -> Sequence[Reading]:
            assert self.clock is not None
            starts.append(self.clock.monotonic())
            return await super().collect()

    timed = Timed("timed", interval=1.0, sleep=0.4)
    running = Running([timed])
    timed.clock = running.clock
    await run_for(running, 3.5)
    first = starts[0]
    assert [round(t - first, 6) for t in starts] == [0.0, 1.0, 2.0, 3.0]
    assert "postgres:timed" in running.runner.view.stats().last_turn


async def test_shutdown_gives_sinks_the_remaining_grace() -> None:
    sink = RecordingSink()
    running = Running([ScriptedCollector("main", interval=0.1)], [sink], shutdown_timeout=3.0)
    await run_for(running, 0.2)
    assert sink.grace == 3.0  # nothing else took time: the fake clock did not move


async def test_a_stuck_sink_cannot_hold_shutdown_past_the_deadline() -> None:
    stuck = RecordingSink(close_delay=60)
    running = Running([ScriptedCollector("main", interval=0.1)], [stuck], shutdown_timeout=0.3)
    with structlog.testing.capture_logs() as logs:
        await run_for(running, 0.1)  # Running.stop itself fails if shutdown takes > 10 s
    assert any(line["event"] == "sink_close_failed" for line in logs)


class Rendezvous(RecordingSink):
    """A sink whose close returns only once every sink of the set is closing too."""

    def __init__(self, name: str, barrier: asyncio.Barrier) -> None:
        super().__init__(name)
        self.barrier = barrier
        self.closed = False

    async def close(self, grace: float) -> None:
        await self.barrier.wait()
        self.closed = True


async def test_sinks_close_at_once_under_one_deadline() -> None:
    """One after another, each durable sink would spend its grace before the next began: the
    sinks close concurrently, each with the whole remaining grace."""
    barrier = asyncio.Barrier(2)
    first, second = Rendezvous("first", barrier), Rendezvous("second", barrier)
    running = Running([], [first, second], shutdown_timeout=1.0)
    with structlog.testing.capture_logs() as logs:
        await run_for(running, 0)
    assert not [line for line in logs if line["event"] == "sink_close_failed"]
    assert first.closed
    assert second.closed


async def test_stats_are_a_copy() -> None:
    """A report that holds the counters cannot change them, nor see them change under it."""
    collector = ScriptedCollector("main", interval=0.1)
    running = Running([collector], [RecordingSink()])
    await running.start()
    taken = running.runner.view.stats()
    taken.polls["postgres:main"] = 1000
    await running.clock.advance(0.2)
    await running.stop()
    assert taken.polls == {"postgres:main": 1000}
    assert running.runner.view.stats().polls == {"postgres:main": 3}


async def test_configure_applies_a_reloaded_scrub_from_the_next_poll() -> None:
    """A reload hands the runtime its new settings in one call (no field assigned): a secret
    the new config declares is masked in the next failure reason."""
    broken = ScriptedCollector("main", interval=0.1, error=RuntimeError("boom s3cret"))
    sink = RecordingSink()
    running = Running([broken], [sink])
    running.runner.configure(RuntimeSettings(scrub=lambda text: text.replace("s3cret", "***")))
    await run_for(running, 0)
    assert "boom ***" in sink.events[0].message
    assert "s3cret" not in sink.events[0].message


def planned(instance: str, identity: object, rules: Any = RULES, interval: float = 0.1) -> Planned:
    settings = SimpleNamespace(rules=rules, interval=interval, timeout=1.0)
    return Planned(
        f"postgres:{instance}", identity, settings, partial(ScriptedCollector, instance, interval)
    )


async def test_apply_keeps_updates_replaces_adds_and_removes() -> None:
    sink = RecordingSink()
    running = Running([], [sink])
    runner = running.runner
    first = await runner.reconciler.apply([planned("a", 1), planned("b", 1), planned("c", 1)])
    assert first == {"postgres:a": "added", "postgres:b": "added", "postgres:c": "added"}
    a, b, c = runner.collectors
    await running.start()
    await running.clock.advance(0.25)
    c.value = 190  # c fires PostgreSQLConnectionPoolCritical
    await running.clock.advance(0.25)
    looser = load(None, {"POSTGRES_CONN_WARNING": "500", "POSTGRES_CONN_CRITICAL": "600"})
    outcome = await runner.reconciler.apply(
        [planned("a", 1), planned("b", 2), planned("d", 1, looser.postgres.rules, 0.2)]
    )
    assert outcome == {
        "postgres:a": "kept",
        "postgres:b": "replaced",
        "postgres:d": "added",
        "postgres:c": "removed",
    }
    assert runner.collectors[0] is a  # kept: same object, same connection
    assert b.closed
    assert c.closed  # removed: closed ...
    resolved = [e for e in sink.events if e.instance == "c" and e.status == "resolved"]
    assert [e.alert for e in resolved] == ["PostgreSQLConnectionPoolCritical"]  # ... resolved
    assert [o.name for o in runner.view.owners()] == ["postgres:a", "postgres:b", "postgres:d"]
    polls_of_a = a.polls
    await running.clock.advance(0.3)
    assert a.polls == polls_of_a + 3  # the kept collector goes on polling, on its clock
    assert runner.collectors[2].polls == 2  # the added one started: at once, then 0.2 s on
    await running.stop()
    updated = await runner.reconciler.apply([planned("a", 1, looser.postgres.rules)])
    assert updated["postgres:a"] == "updated"
    assert a.rules is looser.postgres.rules


async def test_a_replaced_target_keeps_its_firing_alerts() -> None:
    """Reproduced: a reload that changed a firing target's password (a new connection) sent a
    false `resolved`, then a new `firing` with a new `since`. The alert is the target's."""
    sink = RecordingSink()
    running = Running([], [sink])
    runner = running.runner
    await runner.reconciler.apply([planned("main", 1)])
    (old,) = runner.collectors
    old.value = 190
    await running.start()
    await running.clock.advance(0.35)
    (fired,) = sink.events
    assert (fired.alert, fired.status) == ("PostgreSQLConnectionPoolCritical", "firing")
    successor = planned("main", 2)  # a new identity: a new connection, which reads 190 too
    successor = replace(successor, build=partial(ScriptedCollector, "main", 0.1, value=190))
    outcome = await runner.reconciler.apply([successor])
    await running.clock.advance(0.35)
    await running.stop()
    assert outcome == {"postgres:main": "replaced"}
    assert old.closed
    assert runner.collectors[0].polls == 4
    assert sink.events == [fired]  # no resolved, no second firing
    firing = runner.pipeline.evaluator.firing()
    assert [f.alert for f in firing] == ["PostgreSQLConnectionPoolCritical"]
    assert runner.pipeline.evaluator.states[firing[0].key].since == fired.since
