"""The evaluator, edge by edge: every transition of the per-alert state machine, as a table,
plus properties that must hold for any sequence of readings."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from poolwatch.config.rules import Rule
from poolwatch.core.evaluate import Evaluator, concerning, judge
from poolwatch.core.model import Reading, Severity
from poolwatch.core.rule import Threshold
from tests.factories import HOLDERS_CONTEXT, HOLDERS_LINE

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
OWNER = "postgres:main"


def rule(**overrides: Any) -> Rule:
    base: dict[str, Any] = {
        "alert": "PostgreSQLConnectionPoolHigh",
        "alert_critical": "PostgreSQLConnectionPoolCritical",
        "warning": 150,
        "critical": 180,
        "for": 1,
        "clear_for": 2,
        "hysteresis": "5%",
        "repeat": "30m",
    }
    return Rule.model_validate({**base, **overrides})


def reading(value: float, limit: float | None = 197, check: str = "connections") -> Reading:
    return Reading("postgres", "main", check, value, "connections", limit)


def run(values: list[float], the_rule: Rule, step: float = 10.0) -> list[list[tuple[str, ...]]]:
    """Feed values one poll apart; per poll, events as (status, severity, alert[, 'reminder'])."""
    evaluator = Evaluator(host="test")
    out: list[list[tuple[str, ...]]] = []
    for index, value in enumerate(values):
        now = T0 + timedelta(seconds=step * index)
        events = evaluator.observe(OWNER, [reading(value)], {"connections": the_rule}, now)
        out.append(
            [
                (e.status, e.severity, e.alert, *(("reminder",) if e.reminder else ()))
                for e in events
            ]
        )
    return out


W = ("firing", "warning", "PostgreSQLConnectionPoolHigh")
C = ("firing", "critical", "PostgreSQLConnectionPoolCritical")
RW = ("resolved", "warning", "PostgreSQLConnectionPoolHigh")
RC = ("resolved", "critical", "PostgreSQLConnectionPoolCritical")


@pytest.mark.parametrize(
    ("name", "values", "overrides", "expected"),
    [
        ("steady ok gives nothing", [10, 20, 30], {}, [[], [], []]),
        ("just below the threshold is ok", [149], {}, [[]]),
        ("reaching the threshold breaches", [150], {}, [[W]]),
        ("ok to warning fires at once with for=1", [155], {}, [[W]]),
        ("ok to critical fires critical directly", [185], {}, [[C]]),
        ("steady warning gives no repeat", [155, 156, 157, 158], {}, [[W], [], [], []]),
        ("warning escalates to critical", [155, 185], {}, [[W], [C]]),
        ("critical de-escalates to warning after clear_for", [185, 160, 160], {}, [[C], [], [W]]),
        ("resolve takes clear_for polls", [155, 10, 10], {}, [[W], [], [RW]]),
        ("resolve from critical names the critical alert", [185, 10, 10], {}, [[C], [], [RC]]),
        (
            "a breach interrupts the clear streak",
            [155, 10, 155, 10, 10],
            {},
            [[W], [], [], [], [RW]],
        ),
        ("inside the hysteresis band holds the alert", [155, 145, 145, 145], {}, [[W], [], [], []]),
        ("past the hysteresis band clears", [155, 142, 142], {}, [[W], [], [RW]]),
        (
            "critical band holds critical just below its threshold",
            [185, 175, 175],
            {},
            [[C], [], []],
        ),
        ("for=3 needs three breaching polls", [155, 155, 155], {"for": 3}, [[], [], [W]]),
        (
            "for=3 streak broken by an ok poll",
            [155, 155, 10, 155, 155, 155],
            {"for": 3},
            [[], [], [], [], [], [W]],
        ),
        ("for counts a mixed warning/critical streak", [155, 185, 155], {"for": 3}, [[], [], [W]]),
        ("clear_for=1 resolves at once", [155, 10], {"clear_for": 1}, [[W], [RW]]),
        (
            "reminder after repeat while firing",
            [155, 155, 155, 155],
            {"repeat": "20s"},
            [[W], [], [(*W, "reminder")], []],
        ),
        ("no reminder when repeat is long", [155] * 5, {"repeat": "1h"}, [[W], [], [], [], []]),
        (
            "below direction: low value fires",
            [70, 90, 90],
            {
                "warning": 80,
                "critical": None,
                "direction": "below",
                "alert": "RedisKeyspaceHitRateLow",
                "alert_critical": None,
            },
            [
                [("firing", "warning", "RedisKeyspaceHitRateLow")],
                [],
                [("resolved", "warning", "RedisKeyspaceHitRateLow")],
            ],
        ),
        ("percentage of the limit", [150, 160], {"warning": "80%", "critical": "95%"}, [[], [W]]),
        (
            "percentage with no limit known is not judged",
            [10_000],
            {"warning": "80%", "critical": "95%"},
            None,
        ),
    ],
)
def test_transitions(
    name: str, values: list[float], overrides: dict[str, Any], expected: Any
) -> None:
    if expected is None:  # the no-limit case needs its own reading
        evaluator = Evaluator(host="test")
        the_rule = rule(**overrides)
        events = evaluator.observe(
            OWNER, [reading(values[0], limit=None)], {"connections": the_rule}, T0
        )
        assert events == []
        return
    assert run(values, rule(**overrides)) == expected, name


def test_event_carries_threshold_limit_and_since(validate_event: Any) -> None:
    evaluator = Evaluator(host="box")
    rules = {"connections": rule(**{"for": 2})}
    assert evaluator.observe(OWNER, [reading(156)], rules, T0) == []
    (event,) = evaluator.observe(OWNER, [reading(157)], rules, T0 + timedelta(seconds=10))
    assert (event.threshold, event.limit, event.value) == (150, 197, 157)
    assert event.since == T0  # the condition began at the first breaching poll
    assert event.message == ("PostgreSQL main: connections 157/197 (80%), above warning 150")
    validate_event(event.to_dict())
    evaluator.observe(OWNER, [reading(5)], rules, T0 + timedelta(seconds=20))
    (resolved,) = evaluator.observe(OWNER, [reading(5)], rules, T0 + timedelta(seconds=30))
    assert resolved.status == "resolved"
    assert resolved.since == T0
    assert resolved.id != event.id
    validate_event(resolved.to_dict())


def test_quiet_keys_hold_no_state() -> None:
    evaluator = Evaluator(host="test")
    evaluator.observe(OWNER, [reading(5)], {"connections": rule()}, T0)
    assert evaluator.states == {}


def test_sweep_resolves_what_is_no_longer_reported() -> None:
    evaluator = Evaluator(host="test")
    rules = {"connections": rule()}
    (fired,) = evaluator.observe(OWNER, [reading(185)], rules, T0)
    assert evaluator.sweep("other:owner", [], T0) == []
    (gone,) = evaluator.sweep(OWNER, [], T0 + timedelta(seconds=5))
    assert (gone.status, gone.alert) == ("resolved", fired.alert)
    assert "no longer reported" in gone.message
    assert evaluator.states == {}


def test_an_intermittent_check_absent_resolves_through_clear_for() -> None:
    """Absent for want of data (a hit rate over too few lookups) is a poll toward OK, not gone."""
    evaluator = Evaluator(host="test")
    rules = {"connections": rule()}
    quiet = {"connections"}
    (fired,) = evaluator.observe(OWNER, [reading(185)], rules, T0)
    assert evaluator.sweep(OWNER, [], T0 + timedelta(seconds=10), quiet) == []
    (resolved,) = evaluator.sweep(OWNER, [], T0 + timedelta(seconds=20), quiet)
    assert (resolved.status, resolved.alert) == ("resolved", fired.alert)
    assert resolved.message == (
        "PostgreSQL main: connections not reported for 2 polls (last 185); resolved"
    )
    assert evaluator.states == {}


def test_an_intermittent_check_back_and_still_high_keeps_firing() -> None:
    evaluator = Evaluator(host="test")
    rules = {"connections": rule()}
    evaluator.observe(OWNER, [reading(185)], rules, T0)
    assert evaluator.sweep(OWNER, [], T0 + timedelta(seconds=10), {"connections"}) == []
    assert evaluator.observe(OWNER, [reading(185)], rules, T0 + timedelta(seconds=20)) == []
    # the absent poll's streak was broken by the reading: two more are needed
    assert evaluator.sweep(OWNER, [], T0 + timedelta(seconds=30), {"connections"}) == []
    assert len(evaluator.sweep(OWNER, [], T0 + timedelta(seconds=40), {"connections"})) == 1


def test_an_intermittent_check_absent_and_back_ok_resolves_by_the_reading() -> None:
    evaluator = Evaluator(host="test")
    rules = {"connections": rule()}
    evaluator.observe(OWNER, [reading(185)], rules, T0)
    assert evaluator.sweep(OWNER, [], T0 + timedelta(seconds=10), {"connections"}) == []
    (resolved,) = evaluator.observe(OWNER, [reading(5)], rules, T0 + timedelta(seconds=20))
    assert resolved.message.endswith("back below critical 180; resolved")


def test_an_intermittent_check_absent_breaks_a_streak_toward_firing() -> None:
    evaluator = Evaluator(host="test")
    rules = {"connections": rule(**{"for": 2})}
    assert evaluator.observe(OWNER, [reading(185)], rules, T0) == []
    assert evaluator.sweep(OWNER, [], T0 + timedelta(seconds=10), {"connections"}) == []
    assert evaluator.states == {}
    assert evaluator.observe(OWNER, [reading(185)], rules, T0 + timedelta(seconds=20)) == []


def test_unknown_check_and_disabled_rule_are_ignored() -> None:
    evaluator = Evaluator(host="test")
    assert evaluator.observe(OWNER, [reading(999, check="other")], {}, T0) == []
    rules = {"connections": rule(enabled=False)}
    assert evaluator.observe(OWNER, [reading(999)], rules, T0) == []


def test_judge_reports_the_threshold_crossed() -> None:
    verdict = judge(reading(185), rule())
    assert (verdict.severity, verdict.threshold) == (Severity.CRITICAL, 180)
    assert judge(reading(5), rule()).severity == Severity.OK


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(st.floats(min_value=0, max_value=250), min_size=1, max_size=60),
    for_=st.integers(1, 3),
    clear_for=st.integers(1, 3),
)
def test_no_two_firings_without_a_change_between(
    values: list[float], for_: int, clear_for: int
) -> None:
    """Whatever the sequence, a firing is followed by a resolve or a severity change before the
    next firing of the same key; and resolves only follow firings."""
    the_rule = rule(**{"for": for_, "clear_for": clear_for, "repeat": "1000h"})
    events = [e for poll in run(values, the_rule) for e in poll]
    firing_severity: str | None = None
    for status, severity, *_ in events:
        if status == "firing":
            assert severity != firing_severity, events
            firing_severity = severity
        else:
            assert firing_severity is not None, events
            assert severity == firing_severity
            firing_severity = None


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.floats(min_value=0, max_value=250), min_size=1, max_size=60))
def test_state_is_dropped_once_resolved(values: list[float]) -> None:
    evaluator = Evaluator(host="test")
    rules = {"connections": rule()}
    for index, value in enumerate(values):
        evaluator.observe(OWNER, [reading(value)], rules, T0 + timedelta(seconds=index))
    for index in range(3):
        evaluator.observe(OWNER, [reading(0)], rules, T0 + timedelta(seconds=100 + index))
    assert evaluator.states == {}


def test_a_recovered_yes_no_reading_resolves_despite_hysteresis() -> None:
    """`up` below 1 is down; back at 1 it must resolve, not sit inside a 5% band forever."""
    up_rule = Rule.model_validate({"alert": "PostgreSQLDown", "critical": 0, "direction": "below"})
    evaluator = Evaluator(host="test")
    events = []
    for index, value in enumerate([0, 1, 1]):
        up = Reading("postgres", "main", "up", value, "bool")
        events += evaluator.observe(OWNER, [up], {"up": up_rule}, T0 + timedelta(seconds=index))
    assert [(e.status, e.alert) for e in events] == [
        ("firing", "PostgreSQLDown"),
        ("resolved", "PostgreSQLDown"),
    ]


def test_a_rule_disabled_or_removed_resolves_its_firing_alert() -> None:
    """A reload that disables or removes the rule of a firing alert resolves it: at once through
    `retire`, and (for a reading that still comes) through `observe` too; never firing forever."""
    rule = Rule(alert="PoolHigh", warning=Threshold(150))
    reading = Reading("postgres", "main", "connections", 160, "connections")
    for change in ({"connections": rule.model_copy(update={"enabled": False})}, {}):
        evaluator = Evaluator("h")
        (fired,) = evaluator.observe("postgres:main", [reading], {"connections": rule}, T0)
        assert fired.status == "firing"
        (resolved,) = evaluator.retire("postgres:main", change, T0 + timedelta(seconds=1))
        assert (resolved.status, resolved.alert) == ("resolved", "PoolHigh")
        assert "rule was disabled or removed" in resolved.message
        assert evaluator.firing() == []
        assert evaluator.observe("postgres:main", [reading], change, T0) == []

        evaluator.observe("postgres:main", [reading], {"connections": rule}, T0)
        (resolved,) = evaluator.observe("postgres:main", [reading], change, T0)
        assert resolved.status == "resolved"
        assert evaluator.firing() == []


def test_retire_leaves_other_owners_and_judged_alerts_alone() -> None:
    rule = Rule(alert="PoolHigh", warning=Threshold(150))
    evaluator = Evaluator("h")
    for owner, instance in (("postgres:a", "a"), ("postgres:b", "b")):
        reading = Reading("postgres", instance, "connections", 160, "connections")
        evaluator.observe(owner, [reading], {"connections": rule}, T0)
    assert evaluator.retire("postgres:a", {"connections": rule}, T0) == []
    assert len(evaluator.retire("postgres:a", {}, T0)) == 1
    assert [f.key.instance for f in evaluator.firing()] == ["b"]


def test_context_rides_on_firing_and_reminders_never_on_resolved(validate_event: Any) -> None:
    evaluator = Evaluator(host="box")
    rules = {"connections": rule(repeat="1m")}

    def held(value: float) -> Reading:
        return replace(reading(value), context=HOLDERS_CONTEXT)

    (fired,) = evaluator.observe(OWNER, [held(185)], rules, T0)
    assert validate_event(fired.to_dict())["context"] == HOLDERS_CONTEXT
    assert fired.message == (
        "PostgreSQL main: connections 185/197 (94%), above critical 180 — " + HOLDERS_LINE
    )
    (reminder,) = evaluator.observe(OWNER, [held(185)], rules, T0 + timedelta(minutes=2))
    assert reminder.reminder
    assert reminder.context == fired.context
    evaluator.observe(OWNER, [held(5)], rules, T0 + timedelta(minutes=3))
    (resolved,) = evaluator.observe(OWNER, [held(5)], rules, T0 + timedelta(minutes=4))
    assert (resolved.status, resolved.context) == ("resolved", None)
    assert "context" not in validate_event(resolved.to_dict())
    assert "leaky" not in resolved.message


def test_concerning_counts_the_hysteresis_margin_of_a_firing_alert() -> None:
    the_rule = rule()  # warning 150, hysteresis 5%: an alert firing at warning holds to 142.5
    assert concerning(reading(143), the_rule)
    assert not concerning(reading(142), the_rule)
    assert not concerning(reading(185), rule(enabled=False))
    assert not concerning(reading(185), None)
