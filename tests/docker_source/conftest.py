"""Fixtures for the Docker source: the engine must answer (fail, never skip), containers are made
from the local busybox image with `--network none`, named `poolwatch-test-docker-<run>-*` and
always removed; `watching()` runs the real runner with the Docker collector and captures events.

The engine is shared with other work on this machine: tests only ever touch containers they made,
and `include` limits every collector to this test's own name prefix.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

import pytest
from tests.docker_source.helpers import (
    IMAGE,
    Containers,
    Watching,
    docker_cli,
    docker_config,
)
from tests.recording import RecordingSink

from poolwatch.core.evaluate import Evaluator
from poolwatch.runtime.runner import Runner
from poolwatch.runtime.settings import RuntimeSettings
from poolwatch.sources.docker.collector import DockerCollector


@pytest.fixture(scope="session")
def engine() -> None:
    try:
        docker_cli("info", "--format", "{{.ServerVersion}}", timeout=30)
        docker_cli("image", "inspect", "--format", "{{.Id}}", IMAGE, timeout=30)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        pytest.fail(
            f"the Docker engine or {IMAGE} is missing (tests/provision/20-docker.sh): {exc}"
        )


@pytest.fixture
def containers(engine: None) -> Iterator[Containers]:
    made = Containers()
    try:
        yield made
    finally:
        made.remove_all()


@pytest.fixture
def watching() -> Callable[..., contextlib.AbstractAsyncContextManager[Watching]]:
    """`async with watching(include=[...], environment=..., **config) as w:` runs the runner."""

    @contextlib.asynccontextmanager
    async def run(
        environment: Mapping[str, str] | None = None, **changes: Any
    ) -> AsyncIterator[Watching]:
        collector = DockerCollector(docker_config(**changes), environment)
        sink = RecordingSink()  # validates every event against the schema
        runner = Runner(
            [collector],
            [sink],
            Evaluator("poolwatch-test"),
            settings=RuntimeSettings(shutdown_timeout=2),
        )
        stop = asyncio.Event()
        task = asyncio.create_task(runner.run(stop))
        try:
            watch = Watching(collector, sink)
            await watch.connected()
            yield watch
        finally:
            stop.set()
            await asyncio.wait_for(task, 15)
            sink.assert_valid()

    return run
