"""A container's own labels against the operator's config, with real containers: what a label
dropped is said, an exact `include` wins over `poolwatch.enable=false`, and
`docker.honour_labels: false` makes the config alone decide."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from structlog.testing import capture_logs
from tests.daemon import BASE_ENV
from tests.docker_source.helpers import Containers, docker_config

from poolwatch.core.model import Reading
from poolwatch.sources.docker.collector import DockerCollector

pytestmark = pytest.mark.integration

SLEEP = ("sleep", "600")
DISABLED = ("--label", "poolwatch.enable=false")


def instances(readings: list[Reading]) -> set[str]:
    return {r.instance for r in readings}


def up_message(readings: list[Reading]) -> str | None:
    return next(r.message for r in readings if r.check == "up")


async def collect(**changes: object) -> tuple[list[Reading], list[dict[str, object]]]:
    collector = DockerCollector(docker_config(**changes))
    try:
        with capture_logs() as logged:
            readings = list(await collector.collect())
            again = list(await collector.collect())
    finally:
        await collector.close()
    assert instances(again) == instances(readings)
    return readings, logged


async def test_a_label_drops_what_a_glob_selected_and_says_so(containers: Containers) -> None:
    dropped = containers.run("dropped", *DISABLED, command=SLEEP)
    watched = containers.run("watched", command=SLEEP)
    readings, logged = await collect(include=[containers.prefix + "*"])
    assert watched in instances(readings)
    assert dropped not in instances(readings)
    assert up_message(readings) == (
        f"1 selected container excluded by its own label poolwatch.enable=false: {dropped}"
    )
    said = [line for line in logged if line["event"] == "docker_label_excluded"]
    assert [line["container"] for line in said] == [dropped]  # once, not once a poll
    assert said[0]["selected_by"] == [containers.prefix + "*"]


async def test_an_exact_include_wins_over_the_label(containers: Containers) -> None:
    named = containers.run("named", *DISABLED, command=SLEEP)
    other = containers.run("other", *DISABLED, command=SLEEP)
    readings, logged = await collect(include=[named, containers.prefix + "o*"])
    assert named in instances(readings)
    assert other not in instances(readings)
    assert [line["container"] for line in logged if line["event"] == "docker_label_excluded"] == [
        other
    ]


async def test_honour_labels_off_watches_it_with_the_configured_thresholds(
    containers: Containers,
) -> None:
    name = containers.run(
        "labelled", *DISABLED, "--label", "poolwatch.restarts.warning=99", command=SLEEP
    )
    include = [containers.prefix + "*"]
    honoured = DockerCollector(docker_config(include=[name], restart_window=600.0))
    try:
        # the label's threshold, while labels count (and the exact include wins over enable)
        await honoured.collect()
        assert honoured.rules[f"restarts@{name}"].warning is not None
        assert honoured.rules[f"restarts@{name}"].warning.number == 99
    finally:
        await honoured.close()
    readings, logged = await collect(include=include, honour_labels=False)
    assert name in instances(readings)
    assert up_message(readings) is None
    assert not [line for line in logged if line["event"] == "docker_label_excluded"]
    off = DockerCollector(docker_config(include=include, honour_labels=False))
    try:
        await off.collect()
        assert f"restarts@{name}" not in off.rules
    finally:
        await off.close()


def test_once_says_which_selected_containers_a_label_excluded(
    containers: Containers, tmp_path: Path
) -> None:
    dropped = containers.run("once", *DISABLED, command=SLEEP)
    config = tmp_path / "poolwatch.yaml"
    config.write_text(
        json.dumps({"docker": {"enabled": "on", "include": [containers.prefix + "*"]}}),
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, "-m", "poolwatch", "--once", "--format", "json", "--config", str(config)],
        env={**BASE_ENV, "POOLWATCH_HOST_STATS": "off", "POOLWATCH_DOCKER": "on"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    results = [json.loads(line) for line in done.stdout.splitlines()]
    (up,) = [r for r in results if r["check"] == "up"]
    assert up["value"] == 1, done.stderr
    assert f"excluded by its own label poolwatch.enable=false: {dropped}" in up["message"]
    assert dropped not in {r["instance"] for r in results}
    logged = [json.loads(line) for line in done.stderr.splitlines()]
    assert any(
        line["event"] == "docker_label_excluded" and line["container"] == dropped for line in logged
    )
