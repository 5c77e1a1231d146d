"""/metrics stays a valid exposition while alerts that differ only in their labels fire: one series
per alert key and per reading, and `promtool check metrics` finds nothing to report."""

from __future__ import annotations

import asyncio
import subprocess
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from poolwatch.config.load import load
from poolwatch.config.rules import Rule
from poolwatch.core.evaluate import Evaluator
from poolwatch.core.model import Reading
from poolwatch.runtime.health import liveness, readiness
from poolwatch.runtime.listener import Listener
from poolwatch.runtime.metrics import registry_for
from poolwatch.runtime.plan import build_collectors
from poolwatch.runtime.runner import Runner
from tests.eventually import eventually
from tests.postgres.pgserver import PgServer
from tests.stack.conftest import require

DATABASES = ("pw_metrics_a", "pw_metrics_b")

Series = tuple[str, tuple[tuple[str, str], ...]]


def series(text: str) -> list[tuple[Series, float]]:
    """Every sample of the exposition as ((name, sorted labels), value), repeats kept; an empty
    label is no label, as Prometheus reads it."""
    return [
        ((s.name, tuple(sorted((k, v) for k, v in s.labels.items() if v))), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def assert_valid(text: str) -> list[Series]:
    """No series twice, and promtool (the Prometheus project's own checker) says nothing."""
    found = [item for item, _ in series(text)]
    repeated = [item for item, count in Counter(found).items() if count > 1]
    assert not repeated, repeated
    done = subprocess.run(
        [require("promtool"), "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert (done.returncode, done.stdout + done.stderr) == (0, "")
    return found


@pytest.fixture
async def databases(pg: PgServer) -> AsyncIterator[tuple[str, ...]]:
    """Two more databases beside `postgres`, so PostgreSQLDiskSpaceHigh fires for several."""
    admin = await pg.admin()
    try:
        for name in DATABASES:
            await admin.execute(f"CREATE DATABASE {name}")
        yield DATABASES
    finally:
        for name in DATABASES:
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()


@pytest.mark.integration
async def test_metrics_stay_valid_while_label_bearing_alerts_fire(
    pg: PgServer, databases: tuple[str, ...], tmp_path: Path
) -> None:
    path = tmp_path / "poolwatch.yaml"
    rules = {
        # every database is over 1 byte; every session state has at least 0 sessions
        "database_size_bytes": {"warning": 1},
        "connections_by_state": {"alert": "PostgreSQLSessionsByState", "warning": 0},
    }
    path.write_text(yaml.safe_dump({"interval": "200ms", "postgres": {"rules": rules}}))
    env = {
        "POOLWATCH_POSTGRES_DSN": pg.dsn(),
        "POOLWATCH_DOCKER": "off",
        "DISK_WARNING": "0%",  # every mount: labels device and fstype
    }
    runner = Runner(await build_collectors(load(path, env)), [], Evaluator("test"))
    listener = Listener(
        "127.0.0.1:0",
        registry_for(runner.view, lambda: list(runner.sinks)),
        lambda: liveness(runner.view),
        lambda: readiness(runner.view),
    )
    await listener.start()
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        async with httpx.AsyncClient(timeout=5) as client:

            async def scraped() -> tuple[str, list[dict[str, str]]] | None:
                """The page and its disk alerts, once one for each of three databases shows."""
                text = (await client.get(f"http://127.0.0.1:{listener.port}/metrics")).text
                disk = [
                    dict(labels)
                    for (name, labels), _ in series(text)
                    if name == "poolwatch_alert_active"
                    and ("check", "database_size_bytes") in labels
                ]
                return (text, disk) if len(disk) >= 3 else None

            text, disk = await eventually(scraped, "three disk alerts on /metrics", 30, 0.05)
    finally:
        stop.set()
        await task
        await listener.close()

    found = assert_valid(text)
    assert {d["database"] for d in disk} >= {"postgres", *databases}
    assert {d["alert"] for d in disk} == {"PostgreSQLDiskSpaceHigh"}
    states = {
        dict(labels)["state"]
        for name, labels in found
        if name == "poolwatch_alert_active" and ("check", "connections_by_state") in labels
    }
    assert len(states) >= 2  # active and idle at least: several alerts on one target and check
    sizes = {
        dict(labels)["database"]
        for name, labels in found
        if name == "poolwatch_postgres_database_size_bytes"
    }
    assert sizes >= {"postgres", *databases}


def test_reading_labels_named_like_the_series_own_are_prefixed() -> None:
    """Reading labels called like the series' own, or Prometheus's, keep their value under a
    `label_` name; two that only a label name's character set makes equal give one series."""
    runner = Runner([], [], Evaluator("test"))
    clash = {
        "alert": "a",
        "severity": "s",
        "source": "o",
        "target": "t",
        "check": "c",
        "instance": "i",
        "job": "j",
        "label_alert": "already",
        "__name__": "n",
    }
    readings = [
        Reading("postgres", "main", "database_size_bytes", 10, "bytes", labels=clash),
        Reading("postgres", "main", "database_size_bytes", 20, "bytes", labels={"a.b": "x"}),
        Reading("postgres", "main", "database_size_bytes", 30, "bytes", labels={"a-b": "x"}),
    ]
    runner.pipeline.latest["postgres:main"] = {r.key: r for r in readings}
    rule = Rule.model_validate({"alert": "PostgreSQLDiskSpaceHigh", "warning": 1})
    now = datetime.now(UTC)
    events = runner.pipeline.evaluator.observe(
        "postgres:main", readings, {"database_size_bytes": rule}, now
    )
    assert len(events) == 3

    text = generate_latest(registry_for(runner.view, lambda: [])).decode()
    found = assert_valid(text)

    expected_clash = {
        "label_alert": "a",
        "label_severity": "s",
        "label_source": "o",
        "label_target": "t",
        "label_check": "c",
        "label_instance": "i",
        "label_job": "j",
        "label_label_alert": "already",
        "label___name__": "n",
    }
    own = {
        "alert": "PostgreSQLDiskSpaceHigh",
        "severity": "warning",
        "source": "postgres",
        "target": "main",
        "check": "database_size_bytes",
    }
    active = [dict(labels) for name, labels in found if name == "poolwatch_alert_active"]
    clashing = [labels for labels in active if "label_alert" in labels]
    assert clashing == [{**own, **expected_clash}]
    assert len(active) == 2  # `a.b` and `a-b` are one series: the first is kept
    values = {
        labels: value
        for (name, labels), value in series(text)
        if name == "poolwatch_postgres_database_size_bytes"
    }
    assert values == {
        tuple(sorted({"target": "main", **expected_clash}.items())): 10,
        (("a_b", "x"), ("target", "main")): 20,
    }
