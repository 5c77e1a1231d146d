"""What an item of the engine's event stream says (`ContainerEvent`) and which items are new
(`Resume`), on events the real engine wrote: `docker events` prints the same JSON objects the
collector's subscription reads."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.docker_source.helpers import Containers, docker_cli
from tests.eventually import eventually_sync

from poolwatch.sources.docker.events import ContainerEvent, Resume


def _engine_events(name: str, since: str, until: str | None = None) -> list[dict[str, Any]]:
    """The engine's own event objects for one container between two times."""
    until = until or f"{time.time():.9f}"
    text = docker_cli(
        "events", "--since", since, "--until", until, "--filter", f"container={name}",
        "--format", "{{json .}}", timeout=30,
    )  # fmt: skip
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _actions(name: str, since: str) -> list[str]:
    return [ContainerEvent.parse(item).action for item in _engine_events(name, since)]


def test_a_die_event_says_the_exit_code_and_names_the_container(containers: Containers) -> None:
    since = f"{time.time() - 1:.9f}"
    name = containers.run("exits", command=("sh", "-c", "exit 3"))
    eventually_sync(lambda: "die" in _actions(name, since), "the container's die event")
    events = [ContainerEvent.parse(item) for item in _engine_events(name, since)]
    die = next(e for e in events if e.action == "die")
    start = next(e for e in events if e.action == "start")
    assert die.exit_code == 3
    assert start.exit_code is None
    assert die.attributes["name"] == name
    assert die.attributes["poolwatch-test"] == "docker"  # the container's labels ride along
    assert die.container_id == start.container_id
    assert len(die.container_id) == 64
    assert start.nano <= die.nano
    assert die.health is None


def test_health_events_carry_the_verdict(containers: Containers) -> None:
    since = f"{time.time() - 1:.9f}"
    name = containers.run(
        "sick", "--health-cmd", "false", "--health-interval", "1s", "--health-retries", "1",
        command=("sleep", "300"),
    )  # fmt: skip

    def verdicts() -> list[str | None]:
        found = [ContainerEvent.parse(item) for item in _engine_events(name, since)]
        return [e.health for e in found if e.action.startswith("health_status")]

    assert eventually_sync(verdicts, "a health_status event") == ["unhealthy"]
    starting = ContainerEvent("c", "health_status: starting", 1)
    assert starting.health is None  # no verdict yet


def test_resume_passes_each_event_once_across_a_reconnect(containers: Containers) -> None:
    """A new subscription resumes at the last event's nanosecond, and the engine replays the
    events of that nanosecond: they are not new."""
    since = f"{time.time() - 1:.9f}"
    name = containers.run("twice", command=("sh", "-c", "exit 0"))
    eventually_sync(lambda: "die" in _actions(name, since), "the container's die event")
    first = [ContainerEvent.parse(item) for item in _engine_events(name, since)]
    resume = Resume()
    assert resume.since() is None  # the first subscription starts from now
    assert all(resume.fresh(event) for event in first)
    resumed_at = resume.since()
    assert resumed_at is not None
    assert resumed_at.endswith(f"{first[-1].nano % 10**9:09d}")
    replayed = [ContainerEvent.parse(item) for item in _engine_events(name, resumed_at)]
    assert replayed, "the engine replays the last event's nanosecond"
    assert not any(resume.fresh(event) for event in replayed)
    assert not any(resume.fresh(event) for event in first)  # older than the last: not new


def test_an_event_at_the_same_nanosecond_but_another_container_is_new() -> None:
    resume = Resume()
    assert resume.fresh(ContainerEvent("a", "die", 5))
    assert resume.fresh(ContainerEvent("b", "die", 5))
    assert resume.fresh(ContainerEvent("a", "start", 5))
    assert not resume.fresh(ContainerEvent("a", "die", 5))
    assert resume.since() == "0.000000005"


def test_old_field_names_and_bad_values_parse() -> None:
    event = ContainerEvent.parse({"id": "abc", "status": "oom", "timeNano": "12"})
    assert (event.container_id, event.action, event.nano) == ("abc", "oom", 12)
    odd = ContainerEvent.parse({"Action": "die", "timeNano": None, "Actor": {"Attributes": {}}})
    assert (odd.container_id, odd.nano, odd.exit_code) == ("", 0, None)
