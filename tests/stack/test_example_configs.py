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
