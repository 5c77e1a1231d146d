"""Selection, bounded reading labels, per-container thresholds from labels, and the restart/OOM
window: the pure parts of the Docker source."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from poolwatch.config import load as config
from poolwatch.core.evaluate import Evaluator
from poolwatch.core.model import Reading
from poolwatch.sources.docker.activity import ActivityLog
from poolwatch.sources.docker.containers import (
    MAX_LABEL_LENGTH,
    Choice,
    Container,
    Selector,
    overrides,
)

RULES = config.load(env={}).docker.rules


def container(name: str = "web", **labels: str) -> Container:
    return Container(id="f" * 64, name=name, image="shop/web:1", state="running", labels=labels)


def test_from_list_reads_name_state_and_health() -> None:
    entry = {
        "Id": "e" * 64,
        "Names": ["/shop-web-1"],
        "Image": "shop/web:1",
        "State": "running",
        "Status": "Up 3 minutes (unhealthy)",
        "Labels": {"com.docker.compose.project": "shop", "com.docker.compose.service": "web"},
    }
    found = Container.from_list(entry)
    assert (found.name, found.state, found.health) == ("shop-web-1", "running", "unhealthy")
    assert found.reading_labels() == {
        "image": "shop/web:1",
        "compose_project": "shop",
        "compose_service": "web",
    }
    starting = Container.from_list({**entry, "Status": "Up 1 second (health: starting)"})
    assert starting.health == "starting"
    assert Container.from_list({**entry, "Status": "Up 1 second"}).health is None


def test_reading_labels_are_bounded_and_fixed() -> None:
    found = container(**{"com.docker.compose.project": "p" * 1000, "anything": "else"})
    labels = found.reading_labels()
    assert set(labels) == {"image", "compose_project"}
    assert len(labels["compose_project"]) == MAX_LABEL_LENGTH


@pytest.mark.parametrize(
    ("include", "exclude", "labels", "selected"),
    [
        ((), (), {}, True),
        (("web",), (), {}, True),
        (("db-*",), (), {}, False),
        (("label:tier",), (), {"tier": "front"}, True),
        (("label:tier=back*",), (), {"tier": "front"}, False),
        ((), ("w*",), {}, False),
        (("web",), ("label:tier=front",), {"tier": "front"}, False),
        ((), (), {"poolwatch.enable": "false"}, False),
    ],
)
def test_selector(
    include: tuple[str, ...], exclude: tuple[str, ...], labels: dict[str, str], selected: bool
) -> None:
    assert Selector(include, exclude).selected(container(**labels)) is selected


@pytest.mark.parametrize(
    ("include", "exclude", "honour", "choice"),
    [
        ((), (), True, Choice.LABEL_EXCLUDED),  # every container is selected; the label drops it
        (("w*",), (), True, Choice.LABEL_EXCLUDED),  # a glob is no name
        (("label:tier",), (), True, Choice.LABEL_EXCLUDED),  # nor a label selector
        (("web",), (), True, Choice.WATCHED),  # named exactly: the operator's word wins
        (("web",), ("web",), True, Choice.NOT_SELECTED),  # ... but exclude wins over include
        (("db",), (), True, Choice.NOT_SELECTED),  # not selected at all: nothing to say
        ((), (), False, Choice.WATCHED),  # labels do not count
    ],
)
def test_a_label_against_the_selection(
    include: tuple[str, ...], exclude: tuple[str, ...], honour: bool, choice: Choice
) -> None:
    disabled = container(**{"poolwatch.enable": "false", "tier": "front"})
    assert Selector(include, exclude, honour_labels=honour).choice(disabled) is choice


def test_label_overrides_become_rules_for_that_container() -> None:
    found, problems = overrides(
        RULES,
        container(
            **{
                "poolwatch.cpu_percent.warning": "95%",
                "poolwatch.restarts.warning": "3",
                "poolwatch.memory_percent.critical": "lots",
                "poolwatch.nonsense.warning": "1",
            }
        ),
    )
    assert set(found) == {"cpu_percent@web", "restarts@web"}
    assert str(found["cpu_percent@web"].warning) == "95%"
    assert found["restarts@web"].alert == "ContainerRestartFrequent"
    assert len(problems) == 2


def test_evaluator_uses_the_container_rule() -> None:
    rules = {**RULES, **overrides(RULES, container(**{"poolwatch.cpu_percent.warning": "95%"}))[0]}
    now = datetime(2026, 11, 27, tzinfo=UTC)
    evaluator = Evaluator("test")

    def cpu(name: str) -> Reading:
        return Reading("docker", name, "cpu_percent", 45, "percent", 50)  # 90% of --cpus 0.5

    events = evaluator.observe("docker:engine", [cpu("web"), cpu("worker")], rules, now)
    assert [e.instance for e in events] == ["worker"]  # web's own threshold is 95%
    assert events[0].threshold == pytest.approx(40.0)


def test_restarts_from_events_and_inspect_without_double_counting() -> None:
    log = ActivityLog(window=60)
    cid = "a"
    log.inspected(cid, restart_count=5, oom_killed=False, finished_at="", finished_age=None, now=0)
    assert log.restarts(cid, 0) == 0  # restarts before poolwatch started are a baseline
    assert log.started(cid, 1) is False  # a first start is not a restart
    log.died(cid)
    assert log.started(cid, 2) is True
    assert log.restarts(cid, 2) == 1
    # inspect agrees (6 = 5 + 1): nothing added; then two restarts the stream missed
    log.inspected(cid, 6, False, "", None, now=3)
    log.inspected(cid, 8, False, "", None, now=4)
    assert log.restarts(cid, 4) == 3
    assert log.restarts(cid, 63) == 2  # the first left the window
    log.inspected(cid, 0, False, "", None, now=64)  # engine restarted: RestartCount reset
    assert log.restarts(cid, 64) == 2
    log.forget(cid)
    assert log.restarts(cid, 64) == 0
    assert len(log) == 0


def test_oom_from_event_or_from_inspect() -> None:
    log = ActivityLog(window=60)
    log.oom("a", 10)
    log.inspected("a", 0, True, "t1", finished_age=0.1, now=10.2)  # the same kill
    assert log.ooms("a", 11) == 1
    log.inspected("b", 0, True, "t2", finished_age=5, now=20)  # missed by the stream
    assert log.ooms("b", 20) == 1
    log.inspected("c", 0, True, "t3", finished_age=3600, now=20)  # long ago
    assert log.ooms("c", 20) == 0
    log.keep_only(["a"])
    assert len(log) == 1


def test_timestamps_are_capped() -> None:
    log = ActivityLog(window=1e9, cap=10)
    for moment in range(100):
        log.died("a")
        log.started("a", moment)
    assert log.restarts("a", 100) == 10


def test_image_known_only_by_id_is_shortened() -> None:
    found = Container("a" * 64, "x", "sha256:" + "0123456789ab" * 5, "running")
    assert found.reading_labels() == {"image": "0123456789ab"}


def test_version_comparison() -> None:
    from poolwatch.sources.docker.engine import ONE_SHOT_API, version_tuple

    assert version_tuple("1.41") >= ONE_SHOT_API
    assert version_tuple("1.40") < ONE_SHOT_API
    assert version_tuple("7.1.0") == (7, 1, 0)
    assert version_tuple("6.1.0rc1") >= (6, 1)
