"""The cause step, pure: a dependant's alerts while its parent is down reach stdout only, marked;
a resolve goes where its firing went; what still fires after the parent is back is delivered."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from poolwatch.core.causes import Causes
from poolwatch.core.model import Event, Reading
from tests.factories import T0, make_event

PG_CONTAINER = ("docker", "matrixon-postgres-1")
PG = ("postgres", "main")
BOUNCER = ("pgbouncer", "edge")
GRAPH = {PG: (PG_CONTAINER,), BOUNCER: (PG,)}


def _running(value: int) -> Reading:
    return Reading("docker", PG_CONTAINER[1], "running", value, "bool")


def _up(source: str, instance: str, value: int) -> Reading:
    return Reading(source, instance, "up", value, "bool")


def _pg_down(status: str = "firing", **changes: Any) -> Event:
    return make_event(
        status=status, alert="PostgreSQLDown", severity="critical", check="up", value=0, **changes
    )


def _container_died(status: str = "firing") -> Event:
    return make_event(
        status=status,
        alert="ContainerDied",
        severity="critical",
        source="docker",
        instance=PG_CONTAINER[1],
        check="died",
        value=1,
    )


def _causes() -> Causes:
    causes = Causes(grace=10.0)
    causes.use(GRAPH)
    return causes


def test_a_dependant_firing_while_its_container_is_down_is_held_and_names_the_cause(
    validate_event: Any,
) -> None:
    causes = _causes()
    causes.observe([_running(0)], T0)  # pushed at `die`, before any verdict
    held = causes.admit(_pg_down(), T0)
    assert not held.notify
    assert held.event.held
    assert held.event.caused_by is not None
    assert (held.event.caused_by.alert, held.event.caused_by.instance) == (None, PG_CONTAINER[1])
    assert validate_event(held.event.to_dict())["caused_by"]["alert"] is None
    # the container's own alert is the one page, and later causes name it
    page = causes.admit(_container_died(), T0 + timedelta(seconds=1))
    assert page.notify
    assert not page.event.held
    again = causes.admit(_pg_down(reminder=True), T0 + timedelta(seconds=2))
    assert not again.notify
    assert again.event.caused_by is not None
    assert again.event.caused_by.alert == "ContainerDied"
    assert validate_event(again.event.to_dict())["held"] is True


def test_held_and_resolved_within_the_outage_sends_nothing() -> None:
    causes = _causes()
    causes.observe([_running(0)], T0)
    assert not causes.admit(_pg_down(), T0).notify
    resolved = causes.admit(_pg_down("resolved"), T0 + timedelta(seconds=5))
    assert not resolved.notify
    assert resolved.event.held
    causes.observe([_running(1)], T0 + timedelta(seconds=6))
    assert causes.due(T0 + timedelta(hours=1)) == []


def test_still_firing_a_poll_after_the_parent_is_back_is_delivered_then() -> None:
    causes = _causes()
    causes.observe([_running(0)], T0)
    first = causes.admit(_pg_down(), T0).event
    back = T0 + timedelta(seconds=30)
    causes.observe([_running(1)], back)
    assert causes.due(back + timedelta(seconds=9)) == []  # within the grace: one poll
    (released,) = causes.due(back + timedelta(seconds=10))
    assert (released.status, released.alert, released.since) == ("firing", "PostgreSQLDown", T0)
    assert released.id != first.id
    assert not released.held
    assert released.caused_by is None
    # its firing reached the receivers: so does its resolve, and nothing is held again
    assert causes.admit(_pg_down("resolved"), back + timedelta(seconds=20)).notify
    assert causes.due(back + timedelta(hours=1)) == []


def test_a_cause_that_comes_back_within_the_grace_keeps_it_held() -> None:
    causes = _causes()
    causes.observe([_running(0)], T0)
    causes.admit(_pg_down(), T0)
    causes.observe([_running(1)], T0 + timedelta(seconds=30))
    causes.observe([_running(0)], T0 + timedelta(seconds=35))
    assert causes.due(T0 + timedelta(minutes=5)) == []


def test_an_alert_delivered_before_the_parent_went_down_keeps_its_resolve() -> None:
    causes = _causes()
    assert causes.admit(_pg_down(), T0).notify
    causes.observe([_running(0)], T0 + timedelta(seconds=1))
    assert causes.admit(_pg_down("resolved"), T0 + timedelta(seconds=2)).notify


def test_down_is_transitive_and_names_the_root() -> None:
    causes = _causes()
    causes.observe([_running(0), _up("postgres", "main", 0)], T0)
    causes.admit(_container_died(), T0)
    bouncer = make_event(
        alert="PgBouncerClientsWaiting", source="pgbouncer", instance="edge", check="cl_waiting"
    )
    held = causes.admit(bouncer, T0)
    assert not held.notify
    assert held.event.caused_by is not None
    assert (held.event.caused_by.source, held.event.caused_by.alert) == ("docker", "ContainerDied")
    # with the container back but PostgreSQL still down, PostgreSQL is the cause
    causes.observe([_running(1)], T0 + timedelta(seconds=5))
    again = causes.admit(bouncer, T0 + timedelta(seconds=6))
    assert again.event.caused_by is not None
    assert again.event.caused_by.source == "postgres"


def test_without_a_graph_or_a_down_parent_every_event_passes() -> None:
    causes = Causes(grace=10.0)
    causes.observe([_running(0)], T0)
    assert causes.admit(_pg_down(), T0).notify
    graphed = _causes()
    graphed.observe([_running(1)], T0)
    assert graphed.admit(_pg_down(), T0).notify


def test_a_graph_change_forgets_nodes_no_longer_in_it() -> None:
    causes = _causes()
    causes.observe([_running(0)], T0)
    causes.use({BOUNCER: (PG,)})
    assert PG_CONTAINER not in causes.down


def test_once_marks_each_result_it_would_hold_with_its_cause() -> None:
    from poolwatch.core.model import Severity
    from poolwatch.once.results import Result, mark_caused

    died = Reading("docker", PG_CONTAINER[1], "died", 1, "bool")
    results = [
        Result(_running(0), Severity.OK, None, None, "Docker matrixon-postgres-1: running 0"),
        Result(died, Severity.CRITICAL, 1, "ContainerDied", "Docker ...: died 1"),
        Result(_up("postgres", "main", 0), Severity.CRITICAL, 0, "PostgreSQLDown", "down"),
        Result(_up("redis", "main", 1), Severity.OK, None, None, "up"),
    ]
    marked = mark_caused(results, GRAPH, T0)
    assert [r.caused_by is not None for r in marked] == [False, False, True, False]
    assert marked[2].message == "down (caused by ContainerDied docker/matrixon-postgres-1)"
    assert marked[2].to_dict()["caused_by"]["alert"] == "ContainerDied"
