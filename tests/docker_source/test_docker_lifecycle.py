"""Containers that stop: against the real engine, pushed from its events (a poll every 10
minutes, so only the event stream can say it in time), and the rules of intent on their own."""

from __future__ import annotations

import time
from typing import Any

import pytest
from tests.docker_source.helpers import Containers, docker_cli, matching
from tests.eventually import eventually

from poolwatch.core.model import Event
from poolwatch.sources.docker.lifecycle import Ending, Policy, Verdict, judge

pytestmark = pytest.mark.integration

SLEEPER = ("sleep", "3600")
GRACE, FORGET = 30.0, 86400.0


def _state_events(events: list[Event], name: str) -> list[Event]:
    return [
        e for e in events if e.instance == name and e.alert in ("ContainerDied", "ContainerStopped")
    ]


async def test_docker_stop_of_a_service_that_should_run_warns_and_start_resolves(
    containers: Containers, watching: Any, validate_event: Any
) -> None:
    name = containers.run("stopped", "--restart", "unless-stopped", command=SLEEPER)
    async with watching(include=[containers.prefix + "*"], interval=600.0) as w:
        docker_cli("stop", "-t", "1", name)
        fired = await w.event(matching("ContainerStopped", "firing", name), within=20)
        assert fired.severity == "warning"
        context = validate_event(fired.to_dict())["context"]
        assert context["stopped_by"] == "stop"
        assert context["restart_policy"] == "unless-stopped"
        assert "stopped through the API" in fired.message
        docker_cli("start", name)
        await w.event(matching("ContainerStopped", "resolved", name), within=20)
        assert not [e for e in _state_events(w.sink.events, name) if e.alert == "ContainerDied"]


async def test_docker_kill_of_a_job_is_critical_with_its_exit_code(
    containers: Containers, watching: Any, validate_event: Any
) -> None:
    name = containers.run("killed", command=SLEEPER)  # restart: no
    async with watching(include=[containers.prefix + "*"], interval=600.0) as w:
        docker_cli("kill", name)
        fired = await w.event(matching("ContainerDied", "firing", name), within=20)
        assert fired.severity == "critical"
        context = validate_event(fired.to_dict())["context"]
        assert (context["exit_code"], context["signal"]) == (137, "SIGKILL")
        assert context["stopped_by"] == "kill"
        assert context["restart_policy"] == "no"
        assert "exited 137 (SIGKILL), killed through the API" in fired.message


async def test_a_job_that_exits_0_raises_nothing_and_one_that_fails_pages(
    containers: Containers, watching: Any
) -> None:
    async with watching(include=[containers.prefix + "*"], interval=600.0) as w:
        done = containers.run("migrate", command=("sh", "-c", "sleep 1; exit 0"))
        failed = containers.run("broken", command=("sh", "-c", "sleep 1; exit 3"))
        fired = await w.event(matching("ContainerDied", "firing", failed), within=20)
        assert "exited 3, died on its own" in fired.message
        # the failing job's verdict came from the same events, published after the same settle:
        # the finished one's readings are there too, and say nothing is wrong
        await eventually(
            lambda: docker_cli("inspect", "-f", "{{.State.Status}}", done) == "exited",
            "the job finished",
        )
        assert not _state_events(w.sink.events, done)
        readings = await w.collector.collect()
        mine = {r.check: r.value for r in readings if r.instance == done}
        assert (mine["died"], mine["stopped"]) == (0, 0)


async def test_a_crash_its_policy_restarts_is_not_paged_within_the_grace(
    containers: Containers, watching: Any
) -> None:
    async with watching(include=[containers.prefix + "*"], interval=600.0) as w:
        name = containers.run(
            "crashy", "--restart", "always", command=("sh", "-c", "sleep 2; exit 3")
        )
        await w.event(matching("ContainerRestartFrequent", "firing", name), within=30)
        assert not _state_events(w.sink.events, name)  # the restart counter covers a crash loop


async def test_a_label_says_a_job_should_run(containers: Containers, watching: Any) -> None:
    async with watching(include=[containers.prefix + "*"], interval=600.0) as w:
        name = containers.run(
            "daemonish", "--label", "poolwatch.expect=running", command=("sh", "-c", "exit 0")
        )
        fired = await w.event(matching("ContainerDied", "firing", name), within=20)
        assert "label poolwatch.expect=running" in fired.message


async def test_a_container_stopped_before_poolwatch_started_is_judged_from_inspect(
    containers: Containers, watching: Any
) -> None:
    name = containers.run("before", "--restart", "always", command=SLEEPER)
    docker_cli("stop", "-t", "1", name)
    async with watching(include=[containers.prefix + "*"], interval=600.0) as w:
        fired = await w.event(matching("ContainerStopped", "firing", name), within=20)
        assert "while poolwatch was not watching" in fired.message


# --- the rules, case by case ----------------------------------------------------------------

NOW = time.time()


def _verdict(
    state: str, policy: str, ending: Ending | None, *, expect: str = "policy", restarts: int = 0
) -> Verdict:
    name, _, retries = policy.partition(":")
    return judge(
        state, Policy(name, int(retries or 0)), expect, ending, restarts, NOW, GRACE, FORGET
    )


def _seen(code: int, ago: float = 1.0, by_api: str | None = None) -> Ending:
    return Ending(code, NOW - ago, by_api=by_api, seen=True)


@pytest.mark.parametrize(
    ("state", "policy", "ending", "expect", "restarts", "verdict"),
    [
        ("running", "no", None, "policy", 0, Verdict.FINE),
        ("exited", "no", _seen(0), "policy", 0, Verdict.FINE),  # a finished job
        ("exited", "no", _seen(1), "policy", 0, Verdict.DIED),
        ("exited", "no", _seen(143, by_api="stop"), "policy", 0, Verdict.FINE),  # stopped job
        ("exited", "no", _seen(137, by_api="kill"), "policy", 0, Verdict.DIED),
        ("exited", "always", _seen(0, by_api="stop"), "policy", 0, Verdict.STOPPED),
        ("exited", "always", _seen(137, by_api="kill"), "policy", 0, Verdict.DIED),
        ("restarting", "always", _seen(3, ago=5), "policy", 0, Verdict.FINE),  # in its grace
        ("restarting", "always", _seen(3, ago=60), "policy", 0, Verdict.DIED),  # still down
        ("exited", "on-failure:3", _seen(0), "policy", 0, Verdict.FINE),  # done
        ("exited", "on-failure:3", _seen(1, ago=5), "policy", 1, Verdict.FINE),  # retrying
        ("exited", "on-failure:3", _seen(1), "policy", 3, Verdict.DIED),  # retries used up
        ("exited", "no", _seen(0), "running", 0, Verdict.DIED),
        ("exited", "always", _seen(1), "any", 0, Verdict.FINE),
        ("exited", "always", _seen(0, by_api="stop"), "exited", 0, Verdict.FINE),
        ("created", "always", None, "policy", 0, Verdict.FINE),  # never started
        ("exited", "always", Ending(0, NOW - 60), "policy", 0, Verdict.STOPPED),  # unseen
        ("exited", "no", Ending(1, NOW - 2 * FORGET), "policy", 0, Verdict.FINE),  # history
        ("exited", "no", Ending(1, NOW - 60), "policy", 0, Verdict.DIED),
    ],
)
def test_intent_and_ending_give_the_verdict(
    state: str, policy: str, ending: Ending | None, expect: str, restarts: int, verdict: Verdict
) -> None:
    assert _verdict(state, policy, ending, expect=expect, restarts=restarts) is verdict


# --- a compose service that is gone --------------------------------------------------------


def _service(containers: Containers, project: str, service: str) -> str:
    return containers.run(
        f"{project}-{service}",
        "--label", f"com.docker.compose.project={project}",
        "--label", f"com.docker.compose.service={service}",
        command=SLEEPER,
    )  # fmt: skip


async def test_a_removed_service_is_missing_and_a_whole_project_down_is_not(
    containers: Containers, watching: Any, tmp_path: Any
) -> None:
    project = f"{containers.prefix}shop".replace("-", "")
    web = _service(containers, project, "web")
    db = _service(containers, project, "db")
    settings = {"include": [containers.prefix + "*"], "restart_grace": 1.0, "state_dir": tmp_path}
    async with watching(**settings) as w:
        await eventually(lambda: (tmp_path / "docker-services.json").exists(), "the book saved")
        containers.remove(db)
        fired = await w.event(matching("ContainerMissing", "firing", db), within=20)
        assert fired.severity == "critical"
        assert dict(fired.labels) == {"compose_project": project, "compose_service": "db"}
        assert f"{project}/db has no container" in fired.message
        # compose down: the rest of the project goes too; nothing is missing while none runs
        containers.remove(web)
        await w.event(matching("ContainerMissing", "resolved", db), within=20)
        assert not [e for e in w.sink.events if e.alert == "ContainerMissing" and e.instance == web]
    # poolwatch restarts; the project comes back without its db: the book remembers it
    _service(containers, project, "web")
    async with watching(**settings) as w:
        await w.event(matching("ContainerMissing", "firing", db), within=20)
