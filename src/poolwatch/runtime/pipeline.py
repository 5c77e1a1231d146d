"""The path of one poll: collect, evaluate, mute, fan out to the sinks.

The pipeline also keeps what that path leaves behind (the last value of every reading, the
counters) and is the read-only `RuntimeView` of it that metrics, health and the heartbeat read.
It runs nothing by itself: the scheduler calls it on each tick, the reconciler on a reload.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import fields
from datetime import datetime

from poolwatch.config.rules import Rules
from poolwatch.core.causes import Causes
from poolwatch.core.evaluate import Evaluator, Firing
from poolwatch.core.limits import LimitNote
from poolwatch.core.model import UP_CHECK, AlertKey, Event, Reading, now_utc
from poolwatch.core.mute import Gate, Mute
from poolwatch.core.notices import Notice
from poolwatch.core.reasons import one_line
from poolwatch.logs import get_logger
from poolwatch.runtime.graph import graph, local_addresses
from poolwatch.runtime.limits import LimitWatch
from poolwatch.runtime.settings import RuntimeSettings
from poolwatch.runtime.sinkset import SinkSet
from poolwatch.runtime.view import Owner, RuntimeView, Stats
from poolwatch.sinks import Announces, AuditTrail, Sink
from poolwatch.sources import Collector, Connects, Hosts, Intermittent, Partial, SourceError

SinksOf = Callable[[RuntimeView], Sequence[Sink]]
"""Builds the sinks from the view they report on (the heartbeat and watchdog sinks read it)."""


def owner_of(collector: Collector) -> str:
    return f"{collector.source}:{collector.instance}"


class Pipeline:
    """From readings to events to sinks; the `RuntimeView` of the running collectors."""

    def __init__(
        self,
        evaluator: Evaluator,
        sinks: Sequence[Sink] | SinksOf = (),
        *,
        settings: RuntimeSettings | None = None,
        clock: Callable[[], datetime] = now_utc,
        gate: Gate | None = None,
        limits: LimitWatch | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.evaluator = evaluator
        self.clock = clock
        self.gate = gate or Gate()
        """The mute step between evaluation and the sinks (silences, maintenance windows)."""
        self.causes = Causes(grace=0.0)
        """The cause step before the mute step: a dependant's alerts while its parent is down
        reach stdout only, marked with the cause (one page per outage)."""
        self._local = local_addresses()
        self.limits = limits or LimitWatch()
        """The settings that cannot fire against the limits the servers enforce."""
        self.latest: dict[str, dict[AlertKey, Reading]] = {}
        """The last value of every reading, per collector: what a metrics scrape shows."""
        self._monotonic, self._wall = monotonic, wall
        self._settings = RuntimeSettings()
        self._stats = Stats()
        self._serving: list[Collector] = []
        self._started: float | None = None
        self._log = get_logger()
        self.configure(settings or RuntimeSettings())
        self.sinks = SinkSet(sinks(self) if callable(sinks) else sinks, monotonic=monotonic)

    def configure(self, settings: RuntimeSettings) -> None:
        """Take a reloaded configuration's settings from the next poll on."""
        self._settings = settings
        if settings.origin is not None:
            self.limits.use(settings.origin)

    def serve(self, collectors: Iterable[Collector]) -> None:
        """The collectors running now (the reconciler's), as the view shows them."""
        self._serving = list(collectors)

    def _regraph(self) -> None:
        """The dependency graph as the running collectors say it now; a held alert is released
        one poll (the longest interval of its kind) after its parents are back."""
        self.causes.use(graph(self._serving, self._local))
        intervals = [c.interval for c in self._serving if isinstance(c, Connects)]
        self.causes.grace = max(intervals, default=0.0)

    def begin(self) -> None:
        """Note the wall time the daemon began (`started()`)."""
        self._started = self._wall()

    async def poll(self, collector: Collector) -> list[Reading]:
        """Collect once under the collector's timeout; a failure is an `up` 0 reading."""
        owner = owner_of(collector)
        stats = self._stats
        stats.polls[owner] = stats.polls.get(owner, 0) + 1
        started = self._monotonic()
        try:
            async with asyncio.timeout(collector.timeout):
                readings = list(await collector.collect())
        except Exception as exc:
            stats.durations[owner] = self._monotonic() - started
            stats.failures[owner] = stats.failures.get(owner, 0) + 1
            # a SourceError is already in the source's words; anything else is named
            named = not isinstance(exc, SourceError)
            message = self._settings.scrub(one_line(exc, timeout=collector.timeout, named=named))
            self._log.warning(
                "collection_failed",
                source=collector.source,
                instance=collector.instance,
                reason=message,
            )
            return [
                Reading(collector.source, collector.instance, UP_CHECK, 0, "bool", message=message)
            ]
        stats.durations[owner] = self._monotonic() - started
        stats.last_poll[owner] = self._wall()
        return readings

    async def handle(self, collector: Collector, readings: Sequence[Reading]) -> None:
        """Evaluate one poll's readings and deliver the events it causes."""
        now = self.clock()
        owner = owner_of(collector)
        self.latest[owner] = {r.key: r for r in readings}
        self.limits.observe(owner, collector, readings)
        if isinstance(collector, Connects | Hosts):
            self._regraph()
        self.causes.observe(readings, now)
        events = self.evaluator.observe(owner, readings, collector.rules, now)
        down = any(r.check == UP_CHECK and r.value < 1 for r in readings)
        partial = isinstance(collector, Partial) and collector.last_poll_partial
        if not down and not partial:
            quiet = collector.intermittent_checks if isinstance(collector, Intermittent) else ()
            events += self.evaluator.sweep(owner, (r.key for r in readings), now, quiet)
        if self._settings.log_samples:
            self._log.info(
                "poll",
                source=collector.source,
                instance=collector.instance,
                values={_sample_name(r): round(r.value, 3) for r in readings},
            )
        await self.deliver(events)
        await self._release(self.causes.due(now))

    async def publish(self, collector: Collector, readings: Sequence[Reading]) -> None:
        """Readings a watcher pushed between polls: evaluated, never swept."""
        owner = owner_of(collector)
        self.latest.setdefault(owner, {}).update((r.key, r) for r in readings)
        now = self.clock()
        self.causes.observe(readings, now)
        await self.deliver(self.evaluator.observe(owner, readings, collector.rules, now))

    def turned(self, owner: str) -> None:
        """A collector's loop finished a poll, its evaluation and delivery (liveness)."""
        self._stats.last_turn[owner] = self._wall()

    def overran(self, owner: str, skipped: int) -> None:
        self._stats.overruns[owner] = self._stats.overruns.get(owner, 0) + skipped

    async def take_over(self, owner: str, rules: Rules) -> None:
        """A kept collector's new rules: resolve what they no longer alert on."""
        await self.deliver(self.evaluator.retire(owner, rules, self.clock()))

    async def forget(self, owner: str, *, resolve: bool) -> None:
        """A collector stopped: drop its readings and notes and (unless a successor of the same
        name takes its alerts over) resolve what it had firing."""
        self.latest.pop(owner, None)
        self.limits.forget(owner)
        if resolve:
            await self.deliver(self.evaluator.sweep(owner, (), self.clock()))

    async def deliver(self, events: Sequence[Event]) -> None:
        """Hand events to the sinks through the cause step and the mute step: an event held
        for its cause or muted reaches only the audit trail (stdout), marked; the rest reach
        every sink."""
        now = self.clock()
        for event in events:
            counted = (event.status, event.severity)
            self._stats.events[counted] = self._stats.events.get(counted, 0) + 1
            caused = self.causes.admit(event, now)
            if not caused.notify:
                self._stats.held[event.status] = self._stats.held.get(event.status, 0) + 1
                await self._fan_out(caused.event, notify=False)
                continue
            for admitted, notify in self.gate.admit(caused.event, now):
                await self._fan_out(admitted, notify=notify)

    async def _release(self, events: Sequence[Event]) -> None:
        """Alerts held for a cause that ended and still firing: through the mute step."""
        now = self.clock()
        for event in events:
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
        self._stats.lost[lost] = self._stats.lost.get(lost, 0) + 1
        self._log.error(
            "sink_failed",
            sink=sink.name,
            event_id=ident,
            reason=one_line(exc, timeout=0, named=True),
            **context,
        )

    # the RuntimeView: copies, read as they are at each call

    def owners(self) -> list[Owner]:
        return [Owner(owner_of(c), c.interval, c.timeout) for c in self._serving]

    def latest_readings(self) -> list[Reading]:
        return [r for rs in list(self.latest.values()) for r in list(rs.values())]

    def stats(self) -> Stats:
        # every value is a dict of immutable keys and numbers: copying each dict is a deep copy
        return Stats(**{f.name: dict(getattr(self._stats, f.name)) for f in fields(Stats)})

    def started(self) -> float | None:
        return self._started

    def firing(self) -> list[Firing]:
        return self.evaluator.firing()

    def limit_notes(self) -> list[LimitNote]:
        return self.limits.notes()


def _sample_name(reading: Reading) -> str:
    labels = ",".join(f"{k}={v}" for k, v in reading.labels.items())
    base = f"{reading.instance}.{reading.check}"
    return f"{base}{{{labels}}}" if labels else base
