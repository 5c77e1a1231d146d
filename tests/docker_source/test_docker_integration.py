"""The Docker source against the real engine: what `docker stats` says, restarts, OOM kills."""

from __future__ import annotations

from typing import Any

import pytest
from tests.docker_source.helpers import Containers, docker_cli, docker_config, matching

from poolwatch.core.model import Reading
from poolwatch.sources.docker.collector import DockerCollector

pytestmark = pytest.mark.integration


def _reading(readings: list[Reading] | Any, instance: str, check: str) -> Reading:
    return next(r for r in readings if r.instance == instance and r.check == check)


def _percent(text: str) -> float:
    return float(text.strip().rstrip("%"))


async def test_cpu_limited_busy_loop(containers: Containers, watching: Any) -> None:
    name = containers.run("cpu", "--cpus", "0.5")
    async with watching(include=[containers.prefix + "*"]) as w:
        fired = await w.event(matching("ContainerCPUUsageHigh", "firing", name))
        assert fired.limit == pytest.approx(50.0)  # --cpus 0.5, in docker-stats points
        assert fired.threshold == pytest.approx(40.0)  # the default "80%" of that ceiling
        assert fired.labels["image"] == "poolwatch-test/busybox:latest"

        # the same number as docker stats, measured over a window around its own
        probe = DockerCollector(docker_config(include=[name]))
        try:
            await probe.collect()
            printed = _percent(docker_cli("stats", "--no-stream", "--format", "{{.CPUPerc}}", name))
            ours = _reading(await probe.collect(), name, "cpu_percent").value
        finally:
            await probe.close()
        assert ours == pytest.approx(printed, abs=5)

        docker_cli("kill", name)
        await w.event(matching("ContainerCPUUsageHigh", "resolved", name))


async def test_memory_filled_container(containers: Containers, watching: Any) -> None:
    fill = "dd if=/dev/zero of=/fill/x bs=1M count=27 2>/dev/null; sleep 3600"
    name = containers.run(
        "mem", "--memory", "32m", "--tmpfs", "/fill:size=64m", command=("sh", "-c", fill)
    )
    async with watching(include=[containers.prefix + "*"]) as w:
        fired = await w.event(matching("ContainerMemoryUsageHigh", "firing", name))
        assert fired.value > 80
        # compared once the container's memory holds still (it settles for a few seconds)
        probe = DockerCollector(docker_config(include=[name]))
        try:
            after = _reading(await probe.collect(), name, "memory_percent")
            for _ in range(10):
                before = after
                printed = _percent(
                    docker_cli("stats", "--no-stream", "--format", "{{.MemPerc}}", name)
                )
                after = _reading(await probe.collect(), name, "memory_percent")
                if abs(after.value - before.value) < 0.1:
                    break
            used = _reading(await probe.collect(), name, "memory_usage_bytes")
        finally:
            await probe.close()
        assert after.value == pytest.approx(printed, abs=1)
        assert used.limit == 32 * 1024 * 1024


async def test_restart_loop_fires_from_events(
    containers: Containers, watching: Any, validate_event: Any
) -> None:
    # a poll every 10 minutes: only the event stream can tell of the restart in time
    async with watching(include=[containers.prefix + "*"], interval=600.0) as w:
        name = containers.run(
            "restart", "--restart", "always", command=("sh", "-c", "sleep 1; exit 3")
        )
        fired = await w.event(matching("ContainerRestartFrequent", "firing", name), within=20)
        assert fired.value >= 1
        assert fired.severity == "warning"
        context = validate_event(fired.to_dict())["context"]
        assert context["exit_code"] == 3  # from the `die` event, the moment it happened
        assert context["oom_killed"] is False
        assert context["restarts_in_window"] == fired.value
        assert 1 <= len(context["last_die_times"]) <= 3
        assert "last exit code 3" in fired.message


async def test_oom_killed_container(containers: Containers, watching: Any) -> None:
    async with watching(include=[containers.prefix + "*"], interval=600.0) as w:
        name = containers.run(
            "oom",
            "--memory", "16m", "--memory-swap", "16m", "--tmpfs", "/fill:size=128m",
            command=("sh", "-c", "dd if=/dev/zero of=/fill/x bs=1M count=64; sleep 3600"),
        )  # fmt: skip
        fired = await w.event(matching("ContainerOOMKilled", "firing", name), within=60)
        assert fired.severity == "critical"
        assert fired.context is not None
        assert fired.context["oom_killed"] is True


async def test_removed_container_resolves_and_is_forgotten(
    containers: Containers, watching: Any
) -> None:
    name = containers.run("gone", "--cpus", "0.5")
    async with watching(include=[containers.prefix + "*"]) as w:
        await w.event(matching("ContainerCPUUsageHigh", "firing", name))
        containers.remove_all()
        resolved = await w.event(matching("ContainerCPUUsageHigh", "resolved", name))
        assert "no longer reported" in resolved.message
        # the poll that resolved it had already dropped every trace of the container
        assert not w.collector._known
        assert not w.collector._samples
        assert len(w.collector.activity) == 0


async def test_unhealthy_then_healthy(containers: Containers, watching: Any) -> None:
    async with watching(include=[containers.prefix + "*"], interval=1.0) as w:
        name = containers.run(
            "health",
            "--health-cmd", "test -e /tmp/ok", "--health-interval", "1s", "--health-retries", "1",
            command=("sleep", "3600"),
        )  # fmt: skip
        fired = await w.event(matching("ContainerUnhealthy", "firing", name))
        assert fired.severity == "critical"
        docker_cli("exec", name, "touch", "/tmp/ok")
        await w.event(matching("ContainerUnhealthy", "resolved", name))


async def test_a_reloaded_timeout_reaches_the_api_clients(engine: None) -> None:
    """reconfigure(): every API call after it goes through a client made with the new timeout,
    and the old clients are closed, not left holding sockets."""
    collector = DockerCollector(docker_config(timeout=5.0))
    try:
        await collector.collect()
        old = list(collector.engine._clients)
        assert old
        assert {client.timeout for client in old} == {5}
        collector.reconfigure(docker_config(timeout=9.0))
        await collector.collect()
        new = collector.engine._clients
        assert new
        assert {client.timeout for client in new} == {9}
        assert not set(map(id, old)) & set(map(id, new))
        assert collector.events.timeout == 9.0
    finally:
        await collector.close()


async def test_first_poll_has_a_cpu_percent_for_each_running_container(
    containers: Containers,
) -> None:
    """`--once` polls once: the first poll samples twice, cgroups a short gap apart with the
    inspections inside it; a container whose cgroup is found only once inspected (its own
    `--cgroup-parent`) is sampled again after the longer gap."""
    plain = containers.run("plain")
    nested = containers.run("nested", "--cgroup-parent", "/poolwatch-test")
    collector = DockerCollector(docker_config(include=[containers.prefix + "*"]))
    try:
        readings = await collector.collect()
    finally:
        await collector.close()
    assert collector.stats_via == "cgroup"
    for name in (plain, nested):
        assert _reading(readings, name, "cpu_percent").value > 0  # busy loops
