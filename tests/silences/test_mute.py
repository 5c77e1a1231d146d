"""Matchers and the pure mute step between evaluation and the notifying sinks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from poolwatch.core.matchers import Matcher, MatcherError, event_fields, matches_all
from poolwatch.core.mute import Gate, Mute
from tests.factories import make_event

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
ALERT = "PostgreSQLConnectionPoolHigh"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def parse(*texts: str) -> tuple[Matcher, ...]:
    return tuple(Matcher.parse(t) for t in texts)


@pytest.mark.parametrize(
    ("text", "holds"),
    [
        (f"alert={ALERT}", True),
        ("alert=RedisDown", False),
        ("instance!=replica", True),
        ("source=~post.*", True),
        ("source=~post", False),  # a regex matches the whole value, as in Alertmanager
        ("severity!~crit.*", True),
        ("database=app", True),  # an event label
        ("device=", True),  # a missing label reads as empty
        ("device!=sda", True),
        ("check = connections", True),
    ],
)
def test_matchers_over_fields_and_labels(text: str, holds: bool) -> None:
    event = make_event(labels={"database": "app"})
    assert Matcher.parse(text).matches(event_fields(event)) is holds


@pytest.mark.parametrize("text", ["alert", "=x", "alert~x", "alert=~(", "1x=y"])
def test_bad_matchers_are_refused(text: str) -> None:
    with pytest.raises(MatcherError):
        Matcher.parse(text)


def test_no_matchers_match_nothing() -> None:
    assert not matches_all((), event_fields(make_event()))


def silence(start: float = 0, end: float = 3600, *matchers: str) -> Mute:
    return Mute("s1", parse(*(matchers or (f"alert={ALERT}",))), at(start), at(end))


def sent(admitted: list[tuple[object, bool]]) -> list[bool]:
    return [notify for _, notify in admitted]


def test_an_unmuted_event_passes() -> None:
    gate = Gate()
    (out,) = gate.admit(make_event(), at(1))
    assert out.notify
    assert out.event.muted_by is None


def test_a_muted_firing_is_marked_held_and_delivered_when_the_mute_ends() -> None:
    gate = Gate()
    assert gate.update([silence(0, 60)], at(0)) == []
    firing = make_event(time=at(5))
    (out,) = gate.admit(firing, at(5))
    assert not out.notify
    assert out.event.muted_by == "s1"
    assert out.event.to_dict()["muted"] is True
    assert gate.update([silence(0, 60)], at(30)) == []  # still muted
    (released,) = gate.update([silence(0, 60)], at(60))  # its end passed: not covering
    assert released.status == "firing"
    assert released.muted_by is None
    assert released.id != firing.id
    assert released.since == firing.since
    assert released.time == at(60)
    assert "muted" not in released.to_dict()
    # then its resolve is delivered
    (resolved,) = gate.admit(make_event(status="resolved", time=at(90)), at(90))
    assert resolved.notify


def test_fired_and_resolved_inside_a_mute_sends_nothing() -> None:
    gate = Gate()
    gate.update([silence()], at(0))
    assert sent(gate.admit(make_event(), at(1))) == [False]
    assert sent(gate.admit(make_event(reminder=True), at(2))) == [False]
    (resolved,) = gate.admit(make_event(status="resolved"), at(3))
    assert not resolved.notify
    assert resolved.event.muted_by == "s1"
    assert gate.update([], at(4000)) == []  # nothing left to release


def test_a_resolve_of_a_delivered_firing_is_delivered_inside_a_mute() -> None:
    gate = Gate()
    assert sent(gate.admit(make_event(), at(1))) == [True]
    gate.update([silence(2, 3600)], at(2))
    assert sent(gate.admit(make_event(reminder=True), at(3))) == [False]
    assert sent(gate.admit(make_event(status="resolved"), at(4))) == [True]


def test_a_resolve_right_after_the_end_first_releases_the_firing() -> None:
    gate = Gate()
    gate.update([silence(0, 10)], at(0))
    gate.admit(make_event(), at(5))
    # the silence ended at 10 s; the resolve comes before the next update
    firing, resolved = gate.admit(make_event(status="resolved"), at(11))
    assert firing.notify
    assert firing.event.status == "firing"
    assert resolved.notify
    assert resolved.event.status == "resolved"


def test_only_matching_alerts_are_muted() -> None:
    gate = Gate()
    gate.update([silence(0, 60, "source=redis")], at(0))
    assert sent(gate.admit(make_event(), at(1))) == [True]
    assert gate.muted_by(ALERT, "warning", make_key(), at(1)) is None
    gate.update([silence(0, 60)], at(2))
    assert gate.muted_by(ALERT, "warning", make_key(), at(3)) == "s1"
    assert gate.muted_by(ALERT, "warning", make_key(), at(61)) is None


def make_key():  # type: ignore[no-untyped-def]
    event = make_event()
    from poolwatch.core.model import AlertKey

    return AlertKey(event.source, event.instance, event.check, tuple(event.labels.items()))
