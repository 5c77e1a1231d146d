"""Helpers for the Docker tests (the fixtures in conftest.py use them): the docker CLI with a
timeout, test containers that are always removed, a capturing sink, bounded waits."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.recording import RecordingSink

from poolwatch.config import load as config
from poolwatch.core.model import Event
from poolwatch.sources.docker.collector import DockerCollector

IMAGE = "poolwatch-test/busybox:latest"
PREFIX = "poolwatch-test-docker-"
BUSY_LOOP = ("sh", "-c", "while :; do :; done")


def docker_cli(*args: str, host: str | None = None, timeout: float = 60) -> str:
    argv = ["docker", *(("-H", host) if host else ()), *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done.stdout.strip()


@dataclass
class Containers:
    """Containers made by one test, removed by the fixture whatever happens."""

    host: str | None = None
    prefix: str = field(default_factory=lambda: f"{PREFIX}{uuid.uuid4().hex[:8]}-")
    names: list[str] = field(default_factory=list)

    def run(
        self,
        suffix: str,
        *options: str,
        command: tuple[str, ...] = BUSY_LOOP,
        network: str = "none",
    ) -> str:
        name = self.prefix + suffix
        self.names.append(name)
        docker_cli(
            "run", "-d", "--network", network, "--label", "poolwatch-test=docker",
            "--name", name, *options, IMAGE, *command, host=self.host,
        )  # fmt: skip
        return name

    def remove(self, name: str) -> None:
        docker_cli("rm", "-f", name, host=self.host)
        self.names.remove(name)

    def remove_all(self) -> None:
        if self.names:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                docker_cli("rm", "-f", *self.names, host=self.host)
            self.names.clear()


@dataclass
class Watching:
    collector: DockerCollector
    sink: RecordingSink

    async def event(self, predicate: Callable[[Event], bool], within: float = 30) -> Event:
        """The first captured event that satisfies `predicate`, waiting at most `within` s."""
        return await self.sink.event(predicate, within)

    async def connected(self, within: float = 30) -> None:
        """Wait until the collector's event stream is subscribed."""
        async with asyncio.timeout(within):
            await self.collector.connected.wait()


def docker_config(**changes: Any) -> config.DockerSettings:
    base = config.load(env={}).docker
    return base.model_copy(update={"enabled": "on", "interval": 0.5, "timeout": 5.0, **changes})


def matching(alert: str, status: str, instance: str) -> Callable[[Event], bool]:
    return lambda e: (e.alert, e.status, e.instance) == (alert, status, instance)
