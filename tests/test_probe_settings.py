"""`probe_interval` and PgBouncer's `probe_dsn`: defaults, inheritance, `off`, refusals, secrecy,
`--check-config`, and a reload that changes only the probe's interval keeping the connection."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from poolwatch.config.load import ConfigError, load
from poolwatch.config.secrets import redacted
from poolwatch.sources.pgbouncer.collector import PgBouncerCollector
from poolwatch.sources.postgres.collector import PostgresCollector

ENV = {
    "POOLWATCH_POSTGRES_DSN": "postgresql://mon@db/app",
    "POOLWATCH_REDIS_URL": "redis://cache:6379/0",
    "POOLWATCH_PGBOUNCER_DSN": "postgresql://mon@pgb:6432/pgbouncer",
}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "poolwatch.yaml"
    path.write_text(text)
    return path


def test_default_is_30s_per_source_and_target_with_the_login_rules() -> None:
    config = load(None, ENV)
    for section, alert in (
        (config.postgres, "PostgreSQLLoginFailing"),
        (config.redis, "RedisLoginFailing"),
        (config.pgbouncer, "PgBouncerLoginFailing"),
    ):
        assert section.probe_interval == 30.0
        (target,) = section.targets
        assert target.probe_interval == 30.0
        rule = target.rules["login_ok"]
        assert (rule.alert, rule.direction, rule.for_) == (alert, "below", 1)
        assert rule.critical is not None
        assert rule.critical.number == 0
        assert "login_seconds" not in target.rules  # reported, not judged by default
    assert config.pgbouncer.targets[0].probe_dsn is None
    for check in ("sessions_fatal", "sessions_abandoned", "sessions_killed"):
        assert check not in config.postgres.rules  # no default rule (the docs say how to add)


def test_off_inherits_and_a_target_may_turn_it_back_on(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
postgres:
  probe_interval: off          # YAML reads this as false
  targets:
    - {name: quiet, dsn: postgresql://mon@a/app}
    - {name: watched, dsn: postgresql://mon@b/app, probe_interval: 2m}
redis:
  targets:
    - {name: cache, url: "redis://c:6379/0", probe_interval: "off"}
""",
    )
    config = load(path, {})
    quiet, watched = config.postgres.targets
    assert (quiet.probe_interval, watched.probe_interval) == (None, 120.0)
    assert config.redis.targets[0].probe_interval is None
    shown = yaml.safe_load(yaml.safe_dump(redacted(config)))
    assert shown["postgres"]["probe_interval"] == "off"
    assert [t["probe_interval"] for t in shown["postgres"]["targets"]] == ["off", "2m"]
    assert shown["redis"]["probe_interval"] == "30s"


@pytest.mark.parametrize("value", ["0s", "soon", "[1]"])
def test_a_bad_probe_interval_is_refused_naming_the_key(tmp_path: Path, value: str) -> None:
    path = write(tmp_path, f"postgres:\n  probe_interval: {value}\n")
    with pytest.raises(ConfigError) as caught:
        load(path, {})
    message = str(caught.value)
    assert "postgres.probe_interval" in message
    assert "expected a duration like 30s or 2m, or off" in message


def test_probe_dsn_is_a_secret_that_may_come_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "probe_dsn"
    secret.write_text("postgresql://app:probe-s3cret@pgb:6432/app\n")
    path = write(
        tmp_path,
        f"""
pgbouncer:
  targets:
    - name: edge
      dsn: postgresql://mon@pgb:6432/pgbouncer
      probe_dsn_file: {secret}
    - name: inline
      dsn: postgresql://mon@pgb:6432/pgbouncer
      probe_dsn: host=pgb port=6432 dbname=app user=app password=inline-s3cret
""",
    )
    config = load(path, {})
    edge, inline = config.pgbouncer.targets
    assert edge.probe_dsn == "postgresql://app:probe-s3cret@pgb:6432/app"
    assert inline.probe_dsn is not None
    shown = json.dumps(redacted(config))
    assert "probe-s3cret" not in shown
    assert "postgresql://app:***@pgb:6432/app" in shown


@pytest.mark.parametrize(
    ("dsn", "needle"),
    [
        ("postgresql://app:pw-s3cret@pgb:6432/pgbouncer", "exempt from max_client_conn"),
        ("host=pgb dbname=pgbouncer password=pw-s3cret", "exempt from max_client_conn"),
        ("", "give a DSN into a database PgBouncer pools"),
        ("redis://pgb:6379/0", "is not PostgreSQL"),
    ],
)
def test_a_probe_dsn_into_the_admin_console_is_refused(
    tmp_path: Path, dsn: str, needle: str
) -> None:
    path = write(tmp_path, f"pgbouncer:\n  targets:\n    - name: edge\n      probe_dsn: '{dsn}'\n")
    with pytest.raises(ConfigError) as caught:
        load(path, {})
    message = str(caught.value)
    assert "pgbouncer.targets.0.probe_dsn" in message
    assert needle in message
    assert "pw-s3cret" not in message


def test_without_probe_dsn_pgbouncer_has_no_probe() -> None:
    (target,) = load(None, ENV).pgbouncer.targets
    assert PgBouncerCollector(target).probe.interval is None


def test_check_config_shows_the_key() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "poolwatch", "--check-config"],
        env={"POOLWATCH_POSTGRES_DSN": "postgresql://mon@db/app", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    shown = yaml.safe_load(done.stdout)
    assert shown["postgres"]["probe_interval"] == "30s"
    assert shown["postgres"]["targets"][0]["probe_interval"] == "30s"
    assert shown["pgbouncer"]["probe_interval"] == "30s"


async def test_a_reload_that_changes_only_probe_interval_keeps_the_connection(
    tmp_path: Path,
) -> None:
    """`probe_interval` is taken over by `reconfigure`, like interval and timeout: the plan's
    identity leaves it out, so the runner keeps the collector (and its session)."""
    from poolwatch.core.evaluate import Evaluator
    from poolwatch.runtime.runner import Runner

    before = load(None, ENV).postgres
    after = load(write(tmp_path, "postgres:\n  probe_interval: 5m\n"), ENV).postgres
    (old,) = await before.plan(())
    (new,) = await after.plan(())
    assert old.identity == new.identity
    runner = Runner([], [], Evaluator("test"))
    await runner.reconciler.apply([old])
    (collector,) = runner.collectors
    assert isinstance(collector, PostgresCollector)
    outcome = await runner.reconciler.apply([new])
    assert outcome == {"postgres:main": "kept"}
    assert runner.collectors == [collector]
    assert collector.probe.interval == 300.0
    await runner.shutdown()


@pytest.mark.parametrize("source", ["postgres", "redis", "pgbouncer"])
def test_probe_interval_from_the_environment_alone(source: str) -> None:
    """A container configured by environment alone can slow the probe or turn it off."""
    variable = f"POOLWATCH_{source.upper()}_PROBE_INTERVAL"
    assert getattr(load(None, {variable: "2m"}), source).probe_interval == 120.0
    assert getattr(load(None, {variable: "off"}), source).probe_interval is None
