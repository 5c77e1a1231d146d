"""The example Prometheus and Alertmanager files in config/ are valid for the real tools."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.stack.conftest import require

CONFIG = Path(__file__).resolve().parents[2] / "config"


@pytest.mark.integration
@pytest.mark.parametrize(
    ("tool", "args"),
    [
        ("promtool", ["check", "config", str(CONFIG / "prometheus.yml")]),
        ("promtool", ["check", "rules", str(CONFIG / "poolwatch-rules.yml")]),
        ("amtool", ["check-config", str(CONFIG / "alertmanager.yml")]),
    ],
)
def test_example_config_is_valid(tool: str, args: list[str]) -> None:
    done = subprocess.run(
        [require(tool), *args], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout + done.stderr


@pytest.mark.integration
@pytest.mark.parametrize(
    "labels",
    [
        # as poolwatch's Alertmanager sink labels them with the default `teams`
        ["alertname=PgBouncerPoolSaturated", "source=pgbouncer", "team=database"],
        # and with a `teams` mapping written before the source existed: no team label
        ["alertname=PgBouncerDown", "source=pgbouncer", "severity=warning"],
    ],
)
def test_example_routes_pgbouncer_alerts_to_the_database_team(labels: list[str]) -> None:
    done = subprocess.run(
        [
            require("amtool"),
            "config",
            "routes",
            "test",
            f"--config.file={CONFIG / 'alertmanager.yml'}",
            *labels,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.split() == ["database-team"]
