"""Readings → severities → events: thresholds, and one small state machine per alert key.

Pure: no I/O and no clock of its own (every call takes `now`), so each edge is table-tested.

Per alert key (source, instance, check, labels) the machine holds the severity it last announced.
A poll whose severity differs starts or extends a streak; an upward streak (OK → warning →
critical) takes `for` polls, a downward one `clear_for` polls, and the value must be back past the
threshold by the hysteresis margin to count as downward at all. A completed streak is a
transition and gives exactly one event; while firing, a reminder follows every `repeat`. A steady
state gives nothing, and a key at OK with no streak holds no memory.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import NamedTuple

from poolwatch.core.describe import describe_event, describe_reading
from poolwatch.core.model import AlertKey, Event, Reading, Severity
from poolwatch.core.rule import RuleView


@dataclass(frozen=True, slots=True)
class Judgement:
    """The severity of one reading on its own, and the threshold that decided it."""

    severity: Severity
    threshold: float | None


def _breaches(value: float, threshold: float, rule: RuleView, margin: float) -> bool:
    band = abs(threshold) * margin
    if rule.direction == "above":
        return value >= threshold - band
    return value <= threshold + band


def judge(reading: Reading, rule: RuleView, held: Severity = Severity.OK) -> Judgement:
    """Severity from thresholds. `held` is the level already firing: its threshold gets the
    hysteresis margin, so a value hovering just inside it does not flap."""
    for level, threshold in ((Severity.CRITICAL, rule.critical), (Severity.WARNING, rule.warning)):
        if threshold is None:
            continue
        absolute = threshold.resolve(reading.limit)
        if absolute is None:
            continue  # a percentage with no known limit cannot be judged
        # a yes/no reading has no "almost": a margin would keep an `up` alert firing forever
        margin = rule.hysteresis if held >= level and reading.unit != "bool" else 0.0
        if _breaches(reading.value, absolute, rule, margin):
            return Judgement(level, absolute)
    return Judgement(Severity.OK, None)


def rule_for(rules: Mapping[str, RuleView], reading: Reading) -> RuleView | None:
    """The rule judging `reading`: one given to its instance (`check@instance`, e.g. from a
    container's labels) wins over the check's rule."""
    return rules.get(f"{reading.check}@{reading.instance}") or rules.get(reading.check)


def concerning(reading: Reading, rule: RuleView | None) -> bool:
    """Whether `rule` puts `reading` at or above warning, counting the hysteresis margin an alert
    already firing would get: a source reads the (costly) context of a value only then, and a
    reminder inside the margin still gets it."""
    if rule is None or not rule.enabled:
        return False
    return judge(reading, rule, held=Severity.CRITICAL).severity != Severity.OK


def threshold_for(reading: Reading, rule: RuleView, level: Severity) -> float | None:
    chosen = rule.critical if level == Severity.CRITICAL else rule.warning
    return None if chosen is None else chosen.resolve(reading.limit)


class Firing(NamedTuple):
    """An alert at warning or critical, with the name it fires under at that severity."""

    key: AlertKey
    severity: Severity
    alert: str


@dataclass(slots=True)
class AlertState:
    owner: str
    rule: RuleView
    last: Reading
    severity: Severity = Severity.OK
    since: datetime | None = None
    streak: int = 0
    streak_up: bool = True
    streak_start: datetime | None = None
    notified: datetime | None = None
    quiet: int = 0
    """Polls of the current downward streak without a reading (an intermittent check)."""


@dataclass
class Evaluator:
    """Holds the alert states of one poolwatch process; `host` is stamped on every event."""

    host: str
    states: dict[AlertKey, AlertState] = field(default_factory=dict)

    def observe(
        self, owner: str, readings: Iterable[Reading], rules: Mapping[str, RuleView], now: datetime
    ) -> list[Event]:
        """Feed one poll's readings (from the collector `owner`); return the events it causes."""
        events: list[Event] = []
        for reading in readings:
            rule = rule_for(rules, reading)
            if rule is None or not rule.enabled:
                # an alert whose rule a reload took away ends here, not "firing forever"
                events.extend(self._unrule(reading.key, now))
                continue
            event = self._step(owner, reading, rule, now)
            if event is not None:
                events.append(event)
        return events

    def sweep(
        self,
        owner: str,
        seen: Iterable[AlertKey],
        now: datetime,
        intermittent: Collection[str] = (),
    ) -> list[Event]:
        """Resolve and forget the alerts of `owner` that its last successful poll no longer
        reported (a container that went away, a database dropped): no state outlives its thing.

        A check in `intermittent` is absent for want of data, not gone (a hit rate over too few
        lookups): its absence is a poll toward OK, so a firing alert resolves after `clear_for`
        such polls, like any other, and a pending one is dropped."""
        present = set(seen)
        events: list[Event] = []
        for key in [k for k, s in self.states.items() if s.owner == owner and k not in present]:
            if key.check in intermittent:
                events.extend(self._quiet(key, now))
                continue
            state = self.states.pop(key)
            if state.severity != Severity.OK and state.since is not None:
                events.append(
                    self._event(state, state.last, "resolved", state.severity, now, gone=True)
                )
        return events

    def _quiet(self, key: AlertKey, now: datetime) -> list[Event]:
        """One poll without a reading of an intermittent check: a step toward OK."""
        state = self.states[key]
        if state.severity == Severity.OK:
            del self.states[key]  # a streak toward firing needs readings: it is broken
            return []
        if state.streak == 0 or state.streak_up:
            state.streak, state.streak_up, state.streak_start = 0, False, now
            state.quiet = 0
        state.streak += 1
        state.quiet += 1
        if state.streak < state.rule.clear_for:
            return []
        del self.states[key]
        previous = state.severity
        state.severity = Severity.OK
        return [self._event(state, state.last, "resolved", previous, now, quiet=state.quiet)]

    def retire(self, owner: str, rules: Mapping[str, RuleView], now: datetime) -> list[Event]:
        """Resolve and forget the alerts of `owner` that `rules` no longer judge (a rule a
        reload disabled or removed), at once rather than at the next poll."""
        events: list[Event] = []
        for key, state in list(self.states.items()):
            rule = rule_for(rules, state.last)
            if state.owner == owner and (rule is None or not rule.enabled):
                events.extend(self._unrule(key, now))
        return events

    def _unrule(self, key: AlertKey, now: datetime) -> list[Event]:
        state = self.states.pop(key, None)
        if state is None or state.severity == Severity.OK or state.since is None:
            return []
        return [self._event(state, state.last, "resolved", state.severity, now, unruled=True)]

    def firing(self) -> list[Firing]:
        """The alerts firing now (what `/metrics` shows as `poolwatch_alert_active`)."""
        return [
            Firing(key, state.severity, state.rule.name_for(state.severity == Severity.CRITICAL))
            for key, state in list(self.states.items())
            if state.severity != Severity.OK
        ]

    def _step(self, owner: str, reading: Reading, rule: RuleView, now: datetime) -> Event | None:
        key = reading.key
        state = self.states.get(key)
        if state is None:
            state = AlertState(owner=owner, rule=rule, last=reading)
        state.owner, state.rule, state.last = owner, rule, reading
        target = judge(reading, rule, held=state.severity).severity
        event: Event | None = None
        if target == state.severity:
            state.streak = 0
        else:
            up = target > state.severity
            if state.streak == 0 or up != state.streak_up:
                state.streak, state.streak_up, state.streak_start = 0, up, now
                state.quiet = 0
            state.streak += 1
            if state.streak >= (rule.for_ if up else rule.clear_for):
                event = self._transition(state, target, now)
        if event is None and state.severity != Severity.OK:
            event = self._reminder(state, now)
        if state.severity == Severity.OK and state.streak == 0:
            self.states.pop(key, None)
        else:
            self.states[key] = state
        return event

    def _transition(self, state: AlertState, target: Severity, now: datetime) -> Event:
        previous = state.severity
        state.severity, state.streak = target, 0
        if previous == Severity.OK:
            state.since = state.streak_start or now
        if target == Severity.OK:
            return self._event(state, state.last, "resolved", previous, now)
        state.notified = now
        return self._event(state, state.last, "firing", target, now)

    def _reminder(self, state: AlertState, now: datetime) -> Event | None:
        if state.notified is None or (now - state.notified).total_seconds() < state.rule.repeat:
            return None
        state.notified = now
        return replace(self._event(state, state.last, "firing", state.severity, now), reminder=True)

    def _event(
        self,
        state: AlertState,
        reading: Reading,
        status: str,
        level: Severity,
        now: datetime,
        *,
        gone: bool = False,
        unruled: bool = False,
        quiet: int = 0,
    ) -> Event:
        threshold = threshold_for(reading, state.rule, level)
        critical = level == Severity.CRITICAL
        # the context says who holds what is firing: a resolved event has nothing to blame
        context = reading.context if status == "firing" else None
        return Event(
            status="firing" if status == "firing" else "resolved",
            alert=state.rule.name_for(critical),
            severity="critical" if critical else "warning",
            source=reading.source,
            instance=reading.instance,
            check=reading.check,
            value=reading.value,
            unit=reading.unit,
            threshold=threshold,
            limit=reading.limit,
            labels=reading.labels,
            since=state.since or now,
            message=describe_event(
                reading,
                status,
                level,
                threshold,
                state.rule,
                gone=gone,
                unruled=unruled,
                quiet=quiet,
            ),
            host=self.host,
            time=now,
            context=context,
        )


__all__ = [
    "AlertState",
    "Evaluator",
    "Judgement",
    "concerning",
    "describe_reading",
    "judge",
    "rule_for",
    "threshold_for",
]
