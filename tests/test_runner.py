"""The runner's promises: every collector on its own clock, failures turned into data, overruns
skipped with a warning, and a bounded shutdown.

The collectors here are small in-test implementations of the `Collector` protocol, not mocks of a
server: the runner's contract is with that protocol, and these make slowness and failure exact.
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
from poolwatch.core.model import Event, Reading
from poolwatch.runtime.scheduler import Planned, Runner

RULES = load(None, {}).postgres.rules


class ScriptedCollector:
    """Answers from a script: a number is a connection count, an exception is raised, a float
    of seconds under `sleep` makes it hang."""

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
    ) -> None:
        self.instance, self.interval, self.timeout = instance, interval, timeout
        self.value, self.sleep, self.error = value, sleep, error
        self.polls = 0
        self.closed = False

    async def collect(self) -> Sequence[Reading]:
        self.polls += 1
        if self.sleep:
            await asyncio.sleep(self.sleep)
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


class MemorySink:
    name = "memory"

    def __init__(self, close_delay: float = 0.0) -> None:
        self.events: list[Event] = []
        self.close_delay = close_delay
        self.grace: float | None = None

    async def start(self) -> None:
        return None

    async def send(self, event: Event) -> None:
        self.events.append(event)

    async def close(self, grace: float) -> None:
        self.grace = grace
        await asyncio.sleep(self.close_delay)


async def run_for(runner: Runner, seconds: float) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.wait_for(task, timeout=10)


async def test_a_hung_collector_becomes_down_without_delaying_the_others() -> None:
    hung = ScriptedCollector("hung", interval=0.2, timeout=0.3, sleep=60)
    fast = ScriptedCollector("fast", interval=0.1)
    sink = MemorySink()
    runner = Runner([hung, fast], [sink], Evaluator("test"))
    with structlog.testing.capture_logs() as logs:
        await run_for(runner, 1.2)
    assert fast.polls >= 8  # kept its own clock while the other hung
    down = [e for e in sink.events if e.alert == "PostgreSQLDown"]
    assert down, sink.events
    assert down[0].instance == "hung"
    assert "no answer within 0.3s" in down[0].message
    assert any(line["event"] == "collection_failed" for line in logs)
    assert hung.closed
    assert fast.closed


async def test_an_exception_is_data_and_the_loop_goes_on() -> None:
    broken = ScriptedCollector("main", interval=0.1, error=RuntimeError("boom"))
    sink = MemorySink()
    runner = Runner([broken], [sink], Evaluator("test"))
    await run_for(runner, 0.5)
    assert broken.polls >= 3
    assert [e.alert for e in sink.events] == ["PostgreSQLDown"]  # once, not per poll
    assert "RuntimeError: boom" in sink.events[0].message


async def test_recovery_resolves_down() -> None:
    flaky = ScriptedCollector("main", interval=0.1, error=ConnectionError("refused"))
    sink = MemorySink()
    runner = Runner([flaky], [sink], Evaluator("test"))
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    await asyncio.sleep(0.35)
    flaky.error = None
    await asyncio.sleep(0.5)
    stop.set()
    await task
    assert [(e.alert, e.status) for e in sink.events] == [
        ("PostgreSQLDown", "firing"),
        ("PostgreSQLDown", "resolved"),
    ]


async def test_overrun_ticks_are_skipped_with_a_warning() -> None:
    slow = ScriptedCollector("slow", interval=0.1, timeout=2, sleep=0.25)
    runner = Runner([slow], [MemorySink()], Evaluator("test"))
    with structlog.testing.capture_logs() as logs:
        await run_for(runner, 0.9)
    overruns = [line for line in logs if line["event"] == "poll_overrun"]
    assert overruns
    assert overruns[0]["skipped_ticks"] >= 2
    assert slow.polls <= 4  # skipped, not queued up behind each other


async def test_shutdown_gives_sinks_the_remaining_grace() -> None:
    sink = MemorySink()
    runner = Runner(
        [ScriptedCollector("main", interval=0.1)], [sink], Evaluator("test"), shutdown_timeout=3.0
    )
    await run_for(runner, 0.2)
    assert sink.grace is not None
    assert 2.5 < sink.grace <= 3.0


async def test_a_stuck_sink_cannot_hold_shutdown_past_the_deadline() -> None:
    stuck = MemorySink(close_delay=60)
    runner = Runner(
        [ScriptedCollector("main", interval=0.1)], [stuck], Evaluator("test"), shutdown_timeout=0.3
    )
    with structlog.testing.capture_logs() as logs:
        await run_for(runner, 0.1)  # run_for itself fails if shutdown takes > 10 s
    assert any(line["event"] == "sink_close_failed" for line in logs)


def planned(instance: str, identity: object, rules: Any = RULES, interval: float = 0.1) -> Planned:
    settings = SimpleNamespace(rules=rules, interval=interval, timeout=1.0)
    return Planned(
        f"postgres:{instance}", identity, settings, partial(ScriptedCollector, instance, interval)
    )


async def test_apply_keeps_updates_replaces_adds_and_removes() -> None:
    sink = MemorySink()
    runner = Runner([], [sink], Evaluator("test"))
    first = await runner.apply([planned("a", 1), planned("b", 1), planned("c", 1)])
    assert first == {"postgres:a": "added", "postgres:b": "added", "postgres:c": "added"}
    a, b, c = runner.collectors
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    await asyncio.sleep(0.25)
    c.value = 190  # c fires PostgreSQLConnectionPoolCritical
    await asyncio.sleep(0.25)
    looser = load(None, {"POSTGRES_CONN_WARNING": "500", "POSTGRES_CONN_CRITICAL": "600"})
    outcome = await runner.apply(
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
    polls_of_a = a.polls
    await asyncio.sleep(0.3)
    assert a.polls > polls_of_a  # the kept collector goes on polling
    assert runner.collectors[2].polls >= 1  # the added one started
    stop.set()
    await task
    updated = await runner.apply([planned("a", 1, looser.postgres.rules)])
    assert updated["postgres:a"] == "updated"
    assert a.rules is looser.postgres.rules


async def test_a_replaced_target_keeps_its_firing_alerts() -> None:
    """Reproduced: a reload that changed a firing target's password (a new connection) sent a
    false `resolved`, then a new `firing` with a new `since`. The alert is the target's."""
    sink = MemorySink()
    runner = Runner([], [sink], Evaluator("test"))
    await runner.apply([planned("main", 1)])
    (old,) = runner.collectors
    old.value = 190
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    await asyncio.sleep(0.35)
    (fired,) = sink.events
    assert (fired.alert, fired.status) == ("PostgreSQLConnectionPoolCritical", "firing")
    successor = planned("main", 2)  # a new identity: a new connection, which reads 190 too
    successor = replace(successor, build=partial(ScriptedCollector, "main", 0.1, value=190))
    outcome = await runner.apply([successor])
    await asyncio.sleep(0.35)
    stop.set()
    await task
    assert outcome == {"postgres:main": "replaced"}
    assert old.closed
    assert runner.collectors[0].polls >= 1
    assert sink.events == [fired]  # no resolved, no second firing
    firing = runner.evaluator.firing()
    assert [f.alert for f in firing] == ["PostgreSQLConnectionPoolCritical"]
    assert runner.evaluator.states[firing[0].key].since == fired.since
