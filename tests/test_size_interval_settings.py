"""PostgreSQL's `size_interval`: 5 min by default, per section and per target, shown by
`--check-config`, taken over by a reload without reconnecting."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from poolwatch.config.load import ConfigError, load
from poolwatch.config.secrets import redacted
from poolwatch.sources import RETAKEN
from poolwatch.sources.postgres.collector import PostgresCollector


def test_default_is_5m_per_section_and_target() -> None:
    config = load(None, {"POOLWATCH_POSTGRES_DSN": "postgresql://mon@db/app"})
    assert config.postgres.size_interval == 300.0
    assert config.postgres.targets[0].size_interval == 300.0
    shown = yaml.safe_load(yaml.safe_dump(redacted(config)))
    assert shown["postgres"]["size_interval"] == "5m"
    assert shown["postgres"]["targets"][0]["size_interval"] == "5m"


def test_a_target_inherits_the_section_or_sets_its_own(tmp_path: Path) -> None:
    path = tmp_path / "poolwatch.yaml"
    path.write_text(
        """
postgres:
  size_interval: 15m
  targets:
    - {name: a, dsn: postgresql://mon@a/app}
    - {name: b, dsn: postgresql://mon@b/app, size_interval: 30s}
"""
    )
    config = load(path, {})
    assert [t.size_interval for t in config.postgres.targets] == [900.0, 30.0]
    shown = yaml.safe_load(yaml.safe_dump(redacted(config)))
    assert [t["size_interval"] for t in shown["postgres"]["targets"]] == ["15m", "30s"]


@pytest.mark.parametrize("value", ["0s", "off", "soon"])
def test_a_bad_size_interval_is_refused_naming_the_key(tmp_path: Path, value: str) -> None:
    path = tmp_path / "poolwatch.yaml"
    path.write_text(f"postgres:\n  size_interval: {value}\n")
    with pytest.raises(ConfigError) as caught:
        load(path, {})
    assert "size_interval" in str(caught.value)


def test_a_reload_takes_a_new_size_interval_on_the_running_collector() -> None:
    assert "size_interval" in RETAKEN  # not part of the identity: no reconnect
    config = load(None, {"POOLWATCH_POSTGRES_DSN": "postgresql://mon@db/app"})
    target = config.postgres.targets[0]
    running = PostgresCollector(target)
    running.reconfigure(target.model_copy(update={"size_interval": 60.0}))
    assert running.size_interval == 60.0
