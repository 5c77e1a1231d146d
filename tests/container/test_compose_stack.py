"""docker-compose.yml, up for real: the matrixon stack as the README's Deploy section makes it.

What stands in for what a deployment has, and why:
- Images: no registry is reachable, so `postgres:15` and `redis:7` are images built here from
  Debian's PostgreSQL 15 and Redis 7.0 (tests/container/standins/), with entrypoints doing the
  part of the official images' contract the compose file relies on; poolwatch is the image the
  session builds from this checkout.
- The project directory is a temporary copy of `docker-compose.yml` (byte for byte) and
  `deploy/`, where the first `sh` block of the README's Deploy section runs as written (secrets,
  ACL, `.env`) except its last line: `docker compose` (v2) is replaced by Debian's
  `docker-compose` (v1) with an override file. The override holds only
    * the image names;
    * the webhook, which the compose file has commented out: its URL and signing secret, and a
      receiver (tests/webhook/receiver.py in a container of the base image, on the project
      network, reached by its service name like the other services);
    * what this machine cannot give, and only when it cannot: `/` without `rslave` where `/` is
      a private mount, and Redis's `nofile` at the engine's own limit where that is below 65536
      (the README's Deploy section describes both).
- Network: compose's project network is a user-defined bridge. Unlike the default bridge
  (docker0), which `dockerd --bridge=none` removes, those still work with `--iptables=false`:
  containers reach each other by name through the embedded DNS. Nothing here leaves the network.

`container_name: matrixon-resource-monitor` is fixed by the compose file, so only one stack per
engine at a time; the project name is unique and the stack is taken down (`down --volumes`)
whatever happens.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from poolwatch.sinks.webhook.signing import signature, signing_key
from tests import readme
from tests.container.conftest import BASE_IMAGE, ROOT, docker, root_propagation
from tests.container.test_image import host_disks
from tests.eventually import eventually_sync

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

STANDINS = Path(__file__).resolve().parent / "standins"
MONITOR = "matrixon-resource-monitor"
COMPOSE_TIMEOUT = 300
BUSYBOX = "poolwatch-test/busybox:latest"
WEBHOOK_URL = "http://webhook:8080/hook"


# --- the stand-in images ---------------------------------------------------------------------


def standin(name: str) -> str:
    """The stand-in image for `name`, tagged with a hash of its files and of the base image, so
    it is built once (about 30 s, mostly apt) and then found by that tag."""
    base_id = docker("image", "inspect", "--format", "{{.Id}}", BASE_IMAGE).stdout
    digest = hashlib.sha256(base_id.encode())
    for path in sorted((STANDINS / name).rglob("*")):
        if path.is_file():
            digest.update(f"{path.relative_to(STANDINS)}\0{path.stat().st_mode:o}\0".encode())
            digest.update(path.read_bytes())
    tag = f"poolwatch-test/{name}:{digest.hexdigest()[:16]}"
    if docker("image", "inspect", tag, check=False).returncode != 0:
        build = docker(
            "build",
            "--network",
            "host",  # apt reaches the Debian mirror (plain HTTP) from the host's network
            "--build-arg",
            f"BASE_IMAGE={BASE_IMAGE}",
            "--tag",
            tag,
            str(STANDINS / name),
            timeout=COMPOSE_TIMEOUT,
            check=False,
        )
        if build.returncode != 0:
            pytest.fail(f"building {tag} failed:\n{build.stdout[-3000:]}\n{build.stderr[-3000:]}")
    return tag


@pytest.fixture(scope="session")
def standins() -> dict[str, str]:
    return {"postgres": standin("postgres"), "redis": standin("redis")}


# --- the project -------------------------------------------------------------------------------


def deploy_blocks() -> list[str]:
    """The `sh` blocks of the README's Deploy section: the setup, then the webhook secret."""
    return readme.code_blocks("README.md", "sh", heading="Deploy")


def run_deploy_block(block: str, directory: Path) -> None:
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"README Deploy step failed:\n{block}\n{result.stderr}"


def redis_nofile() -> dict[str, Any]:
    """Redis's `ulimits` for the override: none when the engine allows the compose file's 65536;
    else the engine's own hard limit (Docker cannot raise a limit above the daemon's)."""
    run = ("run", "--rm", "--network", "none")
    if docker(*run, "--ulimit", "nofile=65536:65536", BUSYBOX, "true", check=False).returncode == 0:
        return {}
    limit = int(docker(*run, BUSYBOX, "sh", "-c", "ulimit -Hn").stdout)
    assert limit >= 1032, "maxclients 1000 needs 1032 file descriptors"
    return {"ulimits": {"nofile": {"soft": limit, "hard": limit}}}


def override(images: dict[str, str]) -> dict[str, Any]:
    monitor: dict[str, Any] = {
        "image": images["poolwatch"],
        # what docker-compose.yml has commented out for the webhook, uncommented
        "environment": {
            "POOLWATCH_WEBHOOK_URL": WEBHOOK_URL,
            "POOLWATCH_WEBHOOK_SECRET_FILE": "/run/secrets/poolwatch_webhook_secret",
        },
        "secrets": ["poolwatch_webhook_secret"],
    }
    if not root_propagation():
        # the same mount, less `rslave`, which Docker refuses on a private `/`
        monitor["volumes"] = [
            {"type": "bind", "source": "/", "target": "/host/root", "read_only": True}
        ]
    return {
        "services": {
            "postgres": {"image": images["postgres"]},
            "redis": {"image": images["redis"], **redis_nofile()},
            "poolwatch": monitor,
            "webhook": {
                "image": BASE_IMAGE,
                "command": ["python3", "/receiver/receiver.py", "--host", "0.0.0.0"],
                "volumes": [f"{ROOT / 'tests' / 'webhook'}:/receiver:ro"],
                "read_only": True,
                "user": "65534:65534",
            },
        },
        "secrets": {"poolwatch_webhook_secret": {"file": "./secrets/poolwatch_webhook_secret"}},
    }


@dataclass(frozen=True)
class Stack:
    project: str
    directory: Path

    def compose(
        self, *args: str, timeout: float = COMPOSE_TIMEOUT, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
        files = ["--file", "docker-compose.yml", "--file", "override.yml"]
        result = subprocess.run(
            ["docker-compose", "--project-name", self.project, *files, *args],
            cwd=self.directory,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            pytest.fail(f"docker-compose {' '.join(args)} failed:\n{result.stderr[-3000:]}")
        return result

    def container(self, service: str) -> str:
        return f"{self.project}_{service}_1"

    def secret(self, name: str) -> str:
        return (self.directory / "secrets" / name).read_text().strip()

    def run_in(self, service: str, *command: str) -> subprocess.CompletedProcess[str]:
        return self.compose("exec", "-T", service, *command, check=False, timeout=60)


@pytest.fixture(scope="module")
def stack(
    image: str, standins: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    if docker("container", "inspect", MONITOR, check=False).returncode == 0:
        owner = docker(
            "container",
            "inspect",
            "--format",
            '{{index .Config.Labels "com.docker.compose.project"}}',
            MONITOR,
        ).stdout.strip()
        pytest.fail(f"a container named {MONITOR} exists already (compose project {owner!r})")
    directory = tmp_path_factory.mktemp("compose")
    shutil.copyfile(ROOT / "docker-compose.yml", directory / "docker-compose.yml")
    shutil.copytree(ROOT / "deploy", directory / "deploy")
    setup, webhook = deploy_blocks()
    up_line = "docker compose up -d --build"
    assert setup.rstrip().endswith(up_line)
    run_deploy_block(setup.rstrip().removesuffix(up_line), directory)
    run_deploy_block(webhook, directory)

    stack = Stack(f"pwcompose{uuid.uuid4().hex[:10]}", directory)
    (directory / "override.yml").write_text(
        yaml.safe_dump(override({**standins, "poolwatch": image}), sort_keys=False)
    )
    try:
        up = stack.compose("up", "--detach", "--no-build", check=False)
        if up.returncode != 0:
            logs = stack.compose("logs", "--no-color", "--tail", "40", check=False).stdout
            pytest.fail(f"docker-compose up failed:\n{up.stderr[-3000:]}\n{logs[-6000:]}")
        yield stack
    finally:
        stack.compose("down", "--volumes", "--remove-orphans", "--timeout", "10", check=False)


# --- reading the stack -------------------------------------------------------------------------


def log_lines(container: str) -> list[dict[str, Any]]:
    logs = docker("logs", container)
    assert logs.stderr == "", "poolwatch logs to stdout only"
    return [json.loads(line) for line in logs.stdout.splitlines()]


def alert_events(container: str, alert: str, status: str) -> list[dict[str, Any]]:
    return [
        line
        for line in log_lines(container)
        if line.get("alert") == alert and line.get("status") == status and "schema" in line
    ]


def received(stack: Stack) -> list[dict[str, Any]]:
    """The webhook requests the current receiver container printed (its startup line aside)."""
    lines = docker("logs", stack.container("webhook")).stdout.splitlines()
    return [request for request in map(json.loads, lines) if "path" in request]


LOG_KEYS = {"event", "level"}
"""What a log line adds to an event: its log event name and level."""


def check_delivery(stack: Stack, request: dict[str, Any], event: dict[str, Any]) -> None:
    """The request carries the logged event, byte for byte the same JSON, signed with the
    secret the README made."""
    headers = request["headers"]
    assert request["path"] == "/hook"
    assert json.loads(request["body"]) == {k: v for k, v in event.items() if k not in LOG_KEYS}
    assert headers["webhook-id"] == event["id"]
    key = signing_key(stack.secret("poolwatch_webhook_secret"))
    expected = signature(
        key, event["id"], int(headers["webhook-timestamp"]), request["body"].encode()
    )
    assert headers["webhook-signature"] == expected


# --- the tests ---------------------------------------------------------------------------------


def test_init_script_creates_the_monitor_role(stack: Stack) -> None:
    logs = stack.compose("logs", "--no-color", "postgres").stdout
    assert "running /docker-entrypoint-initdb.d/10-poolwatch-role.sh" in logs

    role = stack.run_in(
        "postgres",
        *("psql", "--username", "postgres", "--no-align", "--tuples-only", "--command"),
        "SELECT rolcanlogin, rolsuper, rolconnlimit, pg_has_role(oid, 'pg_monitor', 'MEMBER')"
        " FROM pg_roles WHERE rolname = 'poolwatch'",
    )
    assert role.returncode == 0, role.stderr
    assert role.stdout.strip() == "t|f|3|t"

    # the DSN poolwatch is given logs in over TCP (scram-sha-256), and reads no table's data
    as_monitor = ["sh", "-c", 'psql "$(cat /run/secrets/poolwatch_postgres_dsn)" -Atc "$0"']
    who = stack.run_in(
        "postgres", *as_monitor, "SELECT current_user, inet_server_addr() IS NOT NULL"
    )
    assert who.returncode == 0, who.stderr
    assert who.stdout.strip() == "poolwatch|t"
    denied = stack.run_in("postgres", *as_monitor, "SELECT count(*) FROM pg_authid")
    assert denied.returncode != 0
    assert "permission denied" in denied.stderr


def test_redis_loads_the_readme_acl(stack: Stack) -> None:
    version = stack.run_in("redis", "redis-server", "--version").stdout
    assert re.search(r" v=7\.", version), version
    password = re.search(r"^user default on >(\S+)", stack.secret("redis_users.acl"), re.M)
    assert password
    cli = ["redis-cli", "--no-auth-warning", "--pass", password.group(1)]

    acl = stack.run_in("redis", *cli, "ACL", "LIST").stdout.splitlines()
    monitor = next(line for line in acl if line.startswith("user poolwatch on "))
    assert "-@all" in monitor
    for command in ("+info", "+ping", "+config|get", "+client|setname"):
        assert command in monitor.split()

    # poolwatch connects as its own user, names its connection, and is never refused anything
    eventually_sync(
        lambda: "name=poolwatch" in stack.run_in("redis", *cli, "CLIENT", "LIST").stdout,
        "poolwatch's connection in CLIENT LIST",
        60,
        0.5,
    )
    clients = stack.run_in("redis", *cli, "CLIENT", "LIST").stdout.splitlines()
    named = [line for line in clients if " name=poolwatch " in line]
    assert named
    assert all(" user=poolwatch " in line for line in named)
    assert stack.run_in("redis", *cli, "ACL", "LOG").stdout.strip() == ""
    # ... and that log would show it: a command outside the grant is refused and logged
    url = stack.secret("poolwatch_redis_url").replace("@redis:", "@127.0.0.1:")
    refused = stack.run_in("redis", "redis-cli", "--no-auth-warning", "-u", url, "FLUSHALL")
    assert "NOPERM" in refused.stdout + refused.stderr
    assert "poolwatch" in stack.run_in("redis", *cli, "ACL", "LOG").stdout


def test_monitor_turns_healthy_and_logs_json_lines(stack: Stack) -> None:
    def health() -> dict[str, Any]:
        state = docker("inspect", "--format", "{{json .State.Health}}", MONITOR).stdout
        return dict(json.loads(state))

    # the image's HEALTHCHECK, unchanged: first probe 30 s after the start
    eventually_sync(lambda: health()["Status"] == "healthy", f"{MONITOR} healthy", 120, 0.5)
    assert health()["Log"][-1]["Output"].startswith("healthy: alive")

    lines = log_lines(MONITOR)
    started = lines[0]
    assert started["event"] == "started"
    hostname = socket.gethostname()  # POOLWATCH_HOSTNAME in .env, from `$(hostname)`
    assert started["sources"] == [
        f"host:{hostname}",
        "postgres:main",
        "redis:main",
        "docker:engine",
    ]
    assert started["sinks"] == ["stdout", "webhook:audit"]
    ready = next(line for line in lines if line["event"] == "webhook_ready")
    # a webhook URL's path may be its token: shown masked (README "Security")
    assert (ready["url"], ready["signed"]) == ("http://webhook:8080/***", True)


def test_once_reports_postgres_redis_the_hosts_disks_and_the_containers(stack: Stack) -> None:
    once = docker("exec", MONITOR, "poolwatch", "--once", "--format", "json", check=False)

    # WARNING or CRITICAL may come from this shared machine (its CPU, other tests' containers);
    # what is asserted is that each part of the stack is there, and OK
    assert once.returncode in (0, 1, 2), once.stderr
    results = [json.loads(line) for line in once.stdout.splitlines()]

    def one(source: str, instance: str, check: str) -> dict[str, Any]:
        found = [
            r
            for r in results
            if (r["source"], r["instance"], r["check"]) == (source, instance, check)
        ]
        assert len(found) == 1, (source, instance, check)
        return found[0]

    for source in ("postgres", "redis"):
        up = one(source, "main", "up")
        assert (up["value"], up["severity"]) == (1.0, "ok"), up
    # max_connections=200 less the 3 superuser slots (POSTGRES_CONN_MAX=200 names the former)
    assert one("postgres", "main", "connections")["limit"] == 197
    assert one("redis", "main", "connected_clients")["limit"] == 1000  # --maxclients 1000
    assert one("host", socket.gethostname(), "up")["severity"] == "ok"

    disks = {
        r["instance"] for r in results if r["source"] == "host" and r["check"] == "disk_percent"
    }
    assert disks == set(host_disks())

    for service in ("postgres", "redis", "poolwatch"):
        name = MONITOR if service == "poolwatch" else stack.container(service)
        healthy = one("docker", name, "healthy")
        assert healthy["labels"]["compose_project"] == stack.project
        assert healthy["labels"]["compose_service"] == service
        assert healthy["value"] == 1.0, healthy


def test_alert_reaches_the_webhook_and_the_queue_survives_down_and_up(stack: Stack) -> None:
    # a real alert, no threshold changed: Redis is stopped, poolwatch pages ContainerStopped;
    # RedisDown is its symptom (the URL's host is the compose service): on stdout only, held
    stack.compose("stop", "redis")
    eventually_sync(
        lambda: alert_events(MONITOR, "ContainerStopped", "firing"), "the stop paged", 60, 0.5
    )
    (firing,) = alert_events(MONITOR, "ContainerStopped", "firing")
    assert (firing["severity"], firing["host"]) == ("warning", socket.gethostname())
    assert firing["labels"]["compose_service"] == "redis"
    eventually_sync(
        lambda: alert_events(MONITOR, "RedisDown", "firing"), "RedisDown on stdout", 60, 0.5
    )
    (symptom,) = alert_events(MONITOR, "RedisDown", "firing")
    assert symptom["held"] is True
    assert (symptom["caused_by"]["source"], symptom["caused_by"]["instance"]) == (
        "docker",
        firing["instance"],
    )
    eventually_sync(
        lambda: any(r["headers"]["webhook-id"] == firing["id"] for r in received(stack)),
        "ContainerStopped firing at the webhook",
        60,
        0.5,
    )
    (request,) = [r for r in received(stack) if r["headers"]["webhook-id"] == firing["id"]]
    check_delivery(stack, request, firing)

    # the receiver goes away; Redis comes back, and the resolution can only be queued
    stack.compose("stop", "webhook")
    stack.compose("start", "redis")
    eventually_sync(
        lambda: alert_events(MONITOR, "ContainerStopped", "resolved"), "the stop resolved", 90, 0.5
    )
    (resolved,) = alert_events(MONITOR, "ContainerStopped", "resolved")

    def failed_since_resolved() -> list[dict[str, Any]]:
        lines = log_lines(MONITOR)
        after = lines[lines.index(resolved) + 1 :]
        return [line for line in after if line["event"] == "delivery_failed"]

    # (the item that failed is the queue's head: maybe an older event, from this shared machine)
    eventually_sync(failed_since_resolved, "a delivery failing: the receiver is stopped", 60, 0.5)
    assert failed_since_resolved()[0]["depth"] >= 1

    # down and up: containers and network go, volumes stay; the queue is in poolwatch-state
    follow = subprocess.Popen(
        ["docker", "logs", "--follow", MONITOR],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        stack.compose("down")
        last_words, _ = follow.communicate(timeout=60)
    finally:
        follow.kill()
        follow.wait()
    stopped = [json.loads(line) for line in last_words.splitlines() if '"delivery_stopped"' in line]
    assert stopped, last_words[-2000:]
    assert stopped[-1]["depth"] >= 1
    assert docker("container", "inspect", MONITOR, check=False).returncode != 0
    assert (
        docker("volume", "inspect", f"{stack.project}_poolwatch-state", check=False).returncode == 0
    )

    stack.compose("up", "--detach", "--no-build")
    eventually_sync(
        lambda: any(line["event"] == "queue_opened" for line in log_lines(MONITOR)),
        "the new container's queue_opened",
        60,
        0.5,
    )
    opened = next(line for line in log_lines(MONITOR) if line["event"] == "queue_opened")
    assert opened["depth"] >= 1
    eventually_sync(
        lambda: any(r["headers"]["webhook-id"] == resolved["id"] for r in received(stack)),
        "the queued ContainerStopped resolution at the new receiver",
        90,
        0.5,
    )
    ids = [r["headers"]["webhook-id"] for r in received(stack)]
    assert ids.count(resolved["id"]) == 1
    assert firing["id"] not in ids  # delivered before: acknowledged, never sent again
    (request,) = [r for r in received(stack) if r["headers"]["webhook-id"] == resolved["id"]]
    check_delivery(stack, request, resolved)
