"""One page per outage, through the real pipeline: a real Docker collector and a real PostgreSQL
collector whose target declares the container it runs in (`depends_on`; the found edges are
tests/test_dependencies.py's). While the container is down, PostgreSQLDown reaches stdout only,
held and naming the container; the receivers get the container's page alone."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from tests.docker_source.helpers import Containers, docker_cli, docker_config, matching
from tests.net import free_port
from tests.recording import RecordingSink

from poolwatch.config import load as config
from poolwatch.core.evaluate import Evaluator
from poolwatch.runtime.runner import Runner
from poolwatch.runtime.settings import RuntimeSettings
from poolwatch.sources.docker.collector import DockerCollector
from poolwatch.sources.postgres.collector import PostgresCollector

pytestmark = pytest.mark.integration


class AuditSink(RecordingSink):
    """Records what stdout would: held and muted events too."""

    records_muted = True


async def test_the_container_pages_once_and_the_server_behind_it_is_held_then_released(
    containers: Containers, validate_event: Any
) -> None:
    name = containers.run("db", command=("sleep", "3600"))  # restart: no
    docker_cli("kill", name)  # down before poolwatch starts: ContainerDied from inspect
    # the server "in" the container: a PostgreSQL target at a port nothing listens on, down
    # all along (its own up reading is real); PostgreSQLDown needs 3 polls, by when the Docker
    # source's first poll has said the container is not running
    env = {
        "POOLWATCH_POSTGRES_DSN": f"postgresql://postgres@127.0.0.1:{free_port()}/postgres",
        "POOLWATCH_POSTGRES_PROBE_INTERVAL": "off",
    }
    target = config.load(env=env).postgres.targets[0]
    up = target.rules["up"].model_copy(update={"for_": 3})
    target = target.model_copy(
        update={
            "depends_on": [f"docker:{name}"],
            "interval": 0.5,
            "rules": {**target.rules, "up": up},
        }
    )
    postgres = PostgresCollector(target)
    docker = DockerCollector(docker_config(include=[name], interval=0.5))
    audit, receiver = AuditSink("stdout"), RecordingSink("webhook")
    runner = Runner(
        [docker, postgres],
        [audit, receiver],
        Evaluator("poolwatch-test"),
        settings=RuntimeSettings(shutdown_timeout=2),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        page = await receiver.event(matching("ContainerDied", "firing", name), within=20)
        assert page.severity == "critical"
        held = await audit.event(matching("PostgreSQLDown", "firing", "main"), within=20)
        assert held.held
        assert held.caused_by is not None
        assert (held.caused_by.alert, held.caused_by.source) == ("ContainerDied", "docker")
        assert held.caused_by.instance == name
        assert validate_event(held.to_dict())["caused_by"]["instance"] == name
        assert not [e for e in receiver.events if e.alert == "PostgreSQLDown"]
        # the container back, the server still down: delivered a poll later, its since kept
        docker_cli("start", name)
        await receiver.event(matching("ContainerDied", "resolved", name), within=20)
        released = await receiver.event(matching("PostgreSQLDown", "firing", "main"), within=20)
        assert (released.since, released.held, released.caused_by) == (held.since, False, None)
        assert released.id != held.id
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 15)
