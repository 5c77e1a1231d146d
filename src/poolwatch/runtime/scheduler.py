"""Supervision: one asyncio task per collector on its own interval, events to every sink, and a
bounded shutdown.

A slow collector only delays itself: its overrun ticks are skipped with a warning, and every
collection runs under its timeout. Any failure becomes an `up` reading of 0 (data the evaluator
alerts on), never a dead task. On stop: polling ends, collectors close, sinks get what is left of
`shutdown_timeout` to deliver.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from poolwatch.core.evaluate import Evaluator, Firing
from poolwatch.core.limits import LimitNote
from poolwatch.core.model import UP_CHECK, AlertKey, Event, Reading, now_utc
from poolwatch.core.mute import Gate, Mute
from poolwatch.core.notices import Notice
from poolwatch.core.reasons import one_line
from poolwatch.logs import get_logger
from poolwatch.runtime.limits import LimitWatch
from poolwatch.runtime.view import Owner, RuntimeView, Stats
from poolwatch.sinks import Announces, AuditTrail, Sink
from poolwatch.sources import Collector, Intermittent, Partial, Planned, SourceError, Watcher

_CLOSE_TIMEOUT = 2.0


def owner_of(collector: Collector) -> str:
    return f"{collector.source}:{collector.instance}"


class Runner:
    def __init__(
        self,
        collectors: Sequence[Collector],
        sinks: Sequence[Sink],
        evaluator: Evaluator,
        *,
        shutdown_timeout: float = 5.0,
        clock: Callable[[], datetime] = now_utc,
        log_samples: bool = False,
        scrub: Callable[[str], str] = str,
        gate: Gate | None = None,
        limits: LimitWatch | None = None,
    ) -> None:
        self.collectors = list(collectors)
        self.sinks = list(sinks)
        self.evaluator = evaluator
        self.shutdown_timeout = shutdown_timeout
        self.clock = clock
        self.log_samples = log_samples
        self.scrub = scrub
        """Masks the configured secrets in failure reasons: text from outside poolwatch."""
        self.gate = gate or Gate()
        """The mute step between evaluation and the sinks (silences, maintenance windows)."""
        self.limits = limits or LimitWatch()
        """The settings that cannot fire against the limits the servers enforce."""
        self.stats = Stats()
        self._tasks: dict[str, list[asyncio.Task[Any]]] = {}
        self._identities: dict[str, object] = {}
        self.started: float | None = None
        """Wall time `run` began; None until then."""
        self.latest: dict[str, dict[AlertKey, Reading]] = {}
        """The last value of every reading, per collector: what a metrics scrape shows."""
        self.view: RuntimeView = RunnerView(self)
        """What metrics, health and the heartbeat may read."""
        self._log = get_logger()

    async def poll(self, collector: Collector) -> list[Reading]:
        """Collect once under the collector's timeout; a failure is an `up` 0 reading."""
        owner = owner_of(collector)
        self.stats.polls[owner] = self.stats.polls.get(owner, 0) + 1
        started = time.monotonic()
        try:
            async with asyncio.timeout(collector.timeout):
                readings = list(await collector.collect())
        except Exception as exc:
            self.stats.durations[owner] = time.monotonic() - started
            self.stats.failures[owner] = self.stats.failures.get(owner, 0) + 1
            # a SourceError is already in the source's words; anything else is named
            named = not isinstance(exc, SourceError)
            message = self.scrub(one_line(exc, timeout=collector.timeout, named=named))
            self._log.warning(
                "collection_failed",
                source=collector.source,
                instance=collector.instance,
                reason=message,
            )
            return [
                Reading(collector.source, collector.instance, UP_CHECK, 0, "bool", message=message)
            ]
        self.stats.durations[owner] = time.monotonic() - started
        self.stats.last_poll[owner] = time.time()
        return readings

    async def handle(self, collector: Collector, readings: Sequence[Reading]) -> None:
        """Evaluate one poll's readings and deliver the events it causes."""
        now = self.clock()
        owner = owner_of(collector)
        self.latest[owner] = {r.key: r for r in readings}
        self.limits.observe(owner, collector, readings)
        events = self.evaluator.observe(owner, readings, collector.rules, now)
        down = any(r.check == UP_CHECK and r.value < 1 for r in readings)
        partial = isinstance(collector, Partial) and collector.last_poll_partial
        if not down and not partial:
            quiet = collector.intermittent_checks if isinstance(collector, Intermittent) else ()
            events += self.evaluator.sweep(owner, (r.key for r in readings), now, quiet)
        if self.log_samples:
            self._log.info(
                "poll",
                source=collector.source,
                instance=collector.instance,
                values={_sample_name(r): round(r.value, 3) for r in readings},
            )
        await self.deliver(events)

    async def deliver(self, events: Sequence[Event]) -> None:
        """Hand events to the sinks through the mute step: a muted event reaches only the
        audit trail (stdout), marked; the rest reach every sink."""
        now = self.clock()
        for event in events:
            counted = (event.status, event.severity)
            self.stats.events[counted] = self.stats.events.get(counted, 0) + 1
            for admitted, notify in self.gate.admit(event, now):
                await self._fan_out(admitted, notify=notify)

    async def set_mutes(self, mutes: Sequence[Mute]) -> None:
        """Take the silences and windows in force now; deliver the alerts held back by those
        that ended and still firing."""
        for event in self.gate.update(mutes, self.clock()):
            await self._fan_out(event, notify=True)

    def muted(self) -> list[tuple[Firing, str]]:
        """The firing alerts a mute covers now, each with the id of what mutes it."""
        now = self.clock()
        found = []
        for firing in self.evaluator.firing():
            by = self.gate.muted_by(firing.alert, firing.severity.label, firing.key, now)
            if by is not None:
                found.append((firing, by))
        return found

    async def announce(self, notice: Notice) -> None:
        """An audit notice to every sink that takes notices (stdout, webhooks)."""
        for sink in self.sinks:
            if isinstance(sink, Announces):
                try:
                    await sink.announce(notice)
                except Exception as exc:
                    self._lost(sink, notice.id, exc, kind=notice.log_name)

    async def _fan_out(self, event: Event, *, notify: bool) -> None:
        for sink in self.sinks:
            if not notify and not isinstance(sink, AuditTrail):
                continue
            try:
                await sink.send(event)
            except Exception as exc:  # one broken sink must not silence the others
                self._lost(sink, event.id, exc, alert=event.alert, status=event.status)

    def _lost(self, sink: Sink, ident: str, exc: Exception, **context: str) -> None:
        lost = (sink.name, type(exc).__name__)
        self.stats.lost[lost] = self.stats.lost.get(lost, 0) + 1
        self._log.error(
            "sink_failed",
            sink=sink.name,
            event_id=ident,
            reason=one_line(exc, timeout=0, named=True),
            **context,
        )

    async def _poll_loop(self, collector: Collector) -> None:
        owner = owner_of(collector)
        next_tick = time.monotonic()
        while True:
            readings = await self.poll(collector)
            await self.handle(collector, readings)
            self.stats.last_turn[owner] = time.time()
            next_tick += collector.interval
            now = time.monotonic()
            if now > next_tick:
                skipped = math.ceil((now - next_tick) / collector.interval)
                next_tick += skipped * collector.interval
                self.stats.overruns[owner] = self.stats.overruns.get(owner, 0) + skipped
                self._log.warning(
                    "poll_overrun",
                    source=collector.source,
                    instance=collector.instance,
                    skipped_ticks=skipped,
                    interval=collector.interval,
                )
            await asyncio.sleep(next_tick - now)

    async def _watch(self, collector: Collector, watcher: Watcher) -> None:
        async def publish(readings: Sequence[Reading]) -> None:
            now = self.clock()
            self.latest.setdefault(owner_of(collector), {}).update((r.key, r) for r in readings)
            await self.deliver(
                self.evaluator.observe(owner_of(collector), readings, collector.rules, now)
            )

        await watcher.watch(publish)

    def _start(self, collector: Collector) -> None:
        owner = owner_of(collector)
        tasks = [asyncio.create_task(self._poll_loop(collector), name=owner)]
        if isinstance(collector, Watcher):
            tasks.append(asyncio.create_task(self._watch(collector, collector), name=owner))
        for task in tasks:
            task.add_done_callback(self._report_crash)
        self._tasks[owner] = tasks

    def _report_crash(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self._log.error(
                "task_crashed",
                task=task.get_name(),
                reason=one_line(task.exception() or Exception(), timeout=0, named=True),
            )

    async def _retire(self, collector: Collector, *, resolve: bool = True) -> None:
        """Stop one collector's tasks, close it, and (unless a successor of the same name takes
        its alerts over) resolve what it had firing."""
        owner = owner_of(collector)
        tasks = self._tasks.pop(owner, [])
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await _close_collector(collector)
        self.latest.pop(owner, None)
        self.limits.forget(owner)
        if resolve:
            await self.deliver(self.evaluator.sweep(owner, (), self.clock()))

    async def apply(self, plan: Sequence[Planned]) -> dict[str, str]:
        """Reconcile the running collectors with a new plan (a config reload).

        A collector whose connection settings did not change is kept, with its connection, and
        only takes the new rules, interval and timeout, from its next poll on. One whose
        settings changed is replaced; one no longer planned is stopped and its alerts resolved.
        Returns what happened per collector: kept, updated, replaced, added or removed.
        """
        current = {owner_of(c): c for c in self.collectors}
        outcome: dict[str, str] = {}
        collectors: list[Collector] = []
        for item in plan:
            old = current.pop(item.owner, None)
            if old is not None and self._identities.get(item.owner) == item.identity:
                changed = (old.rules, old.interval, old.timeout) != (
                    item.rules,
                    item.interval,
                    item.timeout,
                )
                old.reconfigure(item.settings)
                collectors.append(old)
                outcome[item.owner] = "updated" if changed else "kept"
                await self.deliver(self.evaluator.retire(item.owner, old.rules, self.clock()))
                continue
            if old is not None:
                # a new password or DSN for the same target: its alerts carry on (same `since`,
                # no resolved/firing pair); the successor's first full poll sweeps what is gone
                await self._retire(old, resolve=False)
            fresh = item.build()
            self._identities[item.owner] = item.identity
            collectors.append(fresh)
            if self.started is not None:
                self._start(fresh)
            outcome[item.owner] = "replaced" if old is not None else "added"
        for owner, gone in current.items():
            await self._retire(gone)
            self._identities.pop(owner, None)
            outcome[owner] = "removed"
        self.collectors = collectors
        return outcome

    async def run(
        self,
        stop: asyncio.Event,
        prepare: Callable[[], Awaitable[None]] | None = None,
        wind_down: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Poll until `stop` is set, then shut down within `shutdown_timeout`. `prepare` runs
        once the sinks are open and before the first poll (the first mutes are applied),
        `wind_down` on stop before the sinks close (nothing more is announced to them)."""
        started = time.monotonic()
        self.started = time.time()
        await self.start_sinks()
        if prepare is not None:
            await prepare()
        for collector in self.collectors:
            self._start(collector)
        try:
            await stop.wait()
        finally:
            deadline = time.monotonic() + self.shutdown_timeout
            if wind_down is not None:
                await wind_down()
            tasks = [task for group in self._tasks.values() for task in group]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._tasks.clear()
            await self._close(deadline)
            self._log.info("stopped", uptime_seconds=round(time.monotonic() - started, 3))

    async def start_sinks(self) -> None:
        """Open every sink before the first poll; if one fails, close those opened and re-raise."""
        for index, sink in enumerate(self.sinks):
            try:
                await sink.start()
            except Exception:
                for opened in self.sinks[:index]:
                    with contextlib.suppress(Exception):
                        await opened.close(0)
                raise

    async def shutdown(self) -> None:
        """Close collectors, then give the sinks what is left of `shutdown_timeout`."""
        await self._close(time.monotonic() + self.shutdown_timeout)

    async def _close(self, deadline: float) -> None:
        await asyncio.gather(*(_close_collector(c) for c in self.collectors))
        for sink in self.sinks:
            remaining = max(0.1, deadline - time.monotonic())
            try:
                async with asyncio.timeout(remaining + 0.5):
                    await sink.close(remaining)
            except Exception as exc:
                self._log.error(
                    "sink_close_failed",
                    sink=sink.name,
                    reason=one_line(exc, timeout=remaining, named=True),
                )


class RunnerView:
    """The `RuntimeView` of a runner: reads its fields as they are at each call."""

    def __init__(self, runner: Runner) -> None:
        self._runner = runner

    def owners(self) -> list[Owner]:
        return [Owner(owner_of(c), c.interval, c.timeout) for c in self._runner.collectors]

    def latest_readings(self) -> list[Reading]:
        return [r for rs in list(self._runner.latest.values()) for r in list(rs.values())]

    def stats(self) -> Stats:
        return self._runner.stats

    def started(self) -> float | None:
        return self._runner.started

    def firing(self) -> list[Firing]:
        return self._runner.evaluator.firing()

    def limit_notes(self) -> list[LimitNote]:
        return self._runner.limits.notes()


async def _close_collector(collector: Collector) -> None:
    with contextlib.suppress(Exception):
        async with asyncio.timeout(_CLOSE_TIMEOUT):
            await collector.close()


def _sample_name(reading: Reading) -> str:
    labels = ",".join(f"{k}={v}" for k, v in reading.labels.items())
    base = f"{reading.instance}.{reading.check}"
    return f"{base}{{{labels}}}" if labels else base
