"""`docker.enabled: auto` says why the source is off, and an engine that is there but unusable is
DockerDown with its reason, never silence (docs/sources/docker.md, "When the source is off")."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs
from tests.daemon import BASE_ENV

from poolwatch.config import load as config
from poolwatch.core.evaluate import Evaluator
from poolwatch.runtime.runner import Runner
from poolwatch.sources.docker import access

NOBODY = 65534


def once(env: dict[str, str], *prefix: str) -> tuple[int, list[dict[str, Any]], str]:
    """`poolwatch --once --format json` as a new process (under `prefix`, e.g. setpriv)."""
    done = subprocess.run(
        [*prefix, sys.executable, "-m", "poolwatch", "--once", "--format", "json"],
        env={**BASE_ENV, "HOME": "/tmp", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd="/",
    )
    return done.returncode, [json.loads(line) for line in done.stdout.splitlines()], done.stderr


def engine_up(results: list[dict[str, Any]]) -> dict[str, Any]:
    found = [r for r in results if (r["source"], r["check"]) == ("docker", "up")]
    assert len(found) == 1, results
    return found[0]


async def test_no_socket_and_no_docker_host_is_off_with_one_info_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(access, "DEFAULT_SOCKET", tmp_path / "docker.sock")
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    settings = config.load(env={}).docker
    assert settings.enabled == "auto"
    with capture_logs() as logs:
        assert await settings.plan(()) == []
    assert logs == [
        {
            "event": "docker_off",
            "log_level": "info",
            "enabled": "auto",
            "reason": f"no DOCKER_HOST and no socket at {tmp_path / 'docker.sock'}",
        }
    ]


async def test_a_running_source_is_kept_on_reload_whatever_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(access, "DEFAULT_SOCKET", tmp_path / "docker.sock")
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    planned = await config.load(env={}).docker.plan({"docker:engine"})
    assert [p.owner for p in planned] == ["docker:engine"]


def test_a_socket_nobody_serves_is_on_and_down(tmp_path: Path) -> None:
    path = tmp_path / "d.sock"
    with socket.socket(socket.AF_UNIX) as stale:
        stale.bind(str(path))  # the file stays; nothing listens: a dockerd that died
    code, results, _ = once({"POOLWATCH_DOCKER": "auto", "DOCKER_HOST": f"unix://{path}"})
    up = engine_up(results)
    assert (code, up["value"], up["alert"]) == (2, 0, "DockerDown")
    assert "Docker engine unreachable" in up["message"]
    assert "Connection refused" in up["message"]


@pytest.mark.integration
def test_a_socket_this_user_may_not_use_is_down_with_the_permission_reason() -> None:
    """The shared engine's socket is root:docker 0660; `nobody` without groups is refused. Only
    connect() is tried: nothing reaches the engine. The poll runs in a forked child that drops
    to uid 65534 (no exec: the interpreter may live where `nobody` cannot read, as under a
    0700 /root), planned and polled by the same code as `--once`."""
    if os.geteuid() != 0:
        pytest.fail("this test drops to uid 65534, which needs root")
    sock = access.DEFAULT_SOCKET
    assert sock.exists(), "the shared engine's socket (tests/provision/20-docker.sh)"
    up = as_nobody_poll_docker()
    assert (up["value"], up["check"]) == (0, "up")
    assert f"permission denied on {sock} (uid {NOBODY})" in up["message"]
    assert f"add the socket's group {sock.stat().st_gid}" in up["message"]
    assert 'docs/sources/docker.md, "Socket access for a non-root user"' in up["message"]


def as_nobody_poll_docker() -> dict[str, Any]:
    """Plan the Docker source under `enabled: auto` and poll it once, as uid 65534."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(read)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            settings = config.load(env={"POOLWATCH_DOCKER": "auto"}).docker
            (planned,) = asyncio.run(settings.plan(()))
            collector = planned.build()
            readings = asyncio.run(Runner([], [], Evaluator("t")).pipeline.poll(collector))
            (up,) = [r for r in readings if r.check == "up"]
            os.write(
                write,
                json.dumps({"check": up.check, "value": up.value, "message": up.message}).encode(),
            )
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        answer = pipe.read()
    os.waitpid(pid, 0)
    assert answer, "the child could not poll (see its stderr)"
    result: dict[str, Any] = json.loads(answer)
    return result
