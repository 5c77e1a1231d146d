"""Configuration: layering, the seed's variables, secrets from files, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from poolwatch.config import fields
from poolwatch.config.load import ConfigError, load
from poolwatch.config.rules import parse_threshold
from poolwatch.config.secrets import redacted
from poolwatch.core.rule import Threshold

REPO = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "poolwatch.yaml"
    path.write_text(text)
    return path


def error_of(path: Path | None = None, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load(path, env or {})
    message = str(caught.value)
    assert "\n" not in message
    assert "Traceback" not in message
    return message


def test_documented_example_equals_built_in_defaults() -> None:
    """config/poolwatch.yaml documents the defaults; the two must never drift apart."""
    documented = load(REPO / "config" / "poolwatch.yaml", {})
    assert documented.model_dump() == load(None, {}).model_dump()


def test_seed_defaults() -> None:
    config = load(None, {})
    cpu = config.host.rules["cpu_percent"]
    assert (cpu.alert, cpu.alert_critical) == ("HighCPUUsage", "CriticalCPUUsage")
    assert (cpu.warning, cpu.critical) == (Threshold(80, True), Threshold(95, True))
    # the seed's "75 % / 90 % of max connections" and "80 % / 90 % of maxclients", of the limit
    # each server enforces: 150/180 and 800/900 on the seed's 200 and 1000
    pool = config.postgres.rules["connections"]
    assert (pool.warning, pool.critical) == (Threshold(75, True), Threshold(90, True))
    clients = config.redis.rules["connected_clients"]
    assert (clients.warning, clients.critical) == (Threshold(80, True), Threshold(90, True))
    assert clients.critical.resolve(1000) == 900
    assert pool.critical.resolve(200) == 180
    assert config.interval == 10.0
    assert config.host.interval == 10.0


def test_layers_yaml_over_defaults_and_environment_over_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, "interval: 30s\nhost:\n  rules:\n    cpu_percent:\n      warning: 70\n")
    config = load(path, {"CPU_CRITICAL": "90%", "POOLWATCH_INTERVAL": "2m"})
    cpu = config.host.rules["cpu_percent"]
    assert cpu.warning == Threshold(70)
    assert cpu.critical == Threshold(90, True)
    assert cpu.alert == "HighCPUUsage"  # untouched keys keep their defaults
    assert config.interval == 120.0
    assert config.host.interval == 120.0


def test_config_path_from_environment(tmp_path: Path) -> None:
    path = write(tmp_path, "interval: 500ms\n")
    assert load(None, {"POOLWATCH_CONFIG": str(path)}).interval == 0.5


@pytest.mark.parametrize(
    ("variable", "value", "path", "expected"),
    [
        ("CPU_WARNING", "80%", ("host", "cpu_percent", "warning"), Threshold(80, True)),
        ("MEMORY_CRITICAL", "95", ("host", "memory_percent", "critical"), Threshold(95)),
        ("DISK_WARNING", "70%", ("host", "disk_percent", "warning"), Threshold(70, True)),
        ("POSTGRES_CONN_WARNING", "100", ("postgres", "connections", "warning"), Threshold(100)),
        ("REDIS_CONN_CRITICAL", "950", ("redis", "connected_clients", "critical"), Threshold(950)),
    ],
)
def test_seed_variables(
    variable: str, value: str, path: tuple[str, str, str], expected: Threshold
) -> None:
    config = load(None, {variable: value})
    section = getattr(config, path[0])
    assert getattr(section.rules[path[1]], path[2]) == expected


def test_seed_max_variables_reach_targets() -> None:
    env = {
        "POSTGRES_CONN_MAX": "200",
        "REDIS_CONN_MAX": "1000",
        "POOLWATCH_POSTGRES_DSN": "postgresql://mon@db/app",
        "POOLWATCH_REDIS_URL": "redis://cache:6379/0",
    }
    config = load(None, env)
    assert config.postgres.targets[0].max_connections == 200
    assert config.postgres.targets[0].name == "main"
    assert config.redis.targets[0].max_clients == 1000


def test_a_lone_user_threshold_overrides_a_contradicting_default() -> None:
    """DISK_CRITICAL=1% alone means critical above 1%, not a conflict with the 80% default."""
    disk = load(None, {"DISK_CRITICAL": "1%"}).host.rules["disk_percent"]
    assert (disk.warning, disk.critical) == (None, Threshold(1, True))
    cpu = load(None, {"CPU_WARNING": "99%"}).host.rules["cpu_percent"]
    assert (cpu.warning, cpu.critical) == (Threshold(99, True), None)


def test_target_inherits_section_then_overrides(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
postgres:
  interval: 5s
  targets:
    - name: main
      dsn: postgresql://mon@db/app
    - name: replica
      dsn: postgresql://mon@replica/app
      interval: 1m
      rules:
        connections: {warning: 50}
""",
    )
    main, replica = load(path, {}).postgres.targets
    assert (main.interval, replica.interval) == (5.0, 60.0)
    assert main.rules["connections"].warning == Threshold(75, True)
    assert replica.rules["connections"].warning == Threshold(50)
    assert replica.rules["connections"].critical == Threshold(90, True)


def test_secrets_from_files_and_redacted(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cr3t-pw\n")
    path = write(
        tmp_path,
        f"""
postgres:
  targets:
    - name: main
      dsn: postgresql://mon:inline-pw@db:5432/app
      password_file: {secret}
""",
    )
    config = load(path, {"POOLWATCH_REDIS_URL": "redis://:redis-pw@cache:6379/0"})
    target = config.postgres.targets[0]
    assert target.password is not None
    assert target.password.get_secret_value() == "s3cr3t-pw"
    shown = yaml.safe_dump(redacted(config))
    for secret_text in ("s3cr3t-pw", "inline-pw", "redis-pw"):
        assert secret_text not in shown
    assert "postgresql://mon:***@db:5432/app" in shown


def test_secret_from_file_variable(tmp_path: Path) -> None:
    secret = tmp_path / "dsn"
    secret.write_text("postgresql://mon:pw@db/app\n")
    config = load(None, {"POOLWATCH_POSTGRES_DSN_FILE": str(secret)})
    assert config.postgres.targets[0].dsn == "postgresql://mon:pw@db/app"


@pytest.mark.parametrize(
    ("text", "env", "needle"),
    [
        ("interval: [1, 2\n", {}, "line 2"),
        ("intervall: 5s\n", {}, "intervall: unknown key"),
        ("interval: -5s\n", {}, "interval: '-5s': expected a duration"),
        ("interval: 0s\n", {}, "interval: '0s': expected a positive duration"),
        (
            "host:\n  rules:\n    cpu_percent: {warning: 96, critical: 90}\n",
            {},
            "host.rules.cpu_percent: warning 96 must not be above critical 90",
        ),
        ("", {"CPU_WARNING": "lots"}, "host.rules.cpu_percent.warning (from CPU_WARNING)"),
        ("", {"POOLWATCH_LOG_FORMAT": "xml"}, "log_format (from POOLWATCH_LOG_FORMAT): 'xml'"),
        ("- just\n- a list\n", {}, "the top level must be a mapping"),
        ("webhooks:\n  - {name: a, url: ftp://x}\n", {}, "webhooks.0.url"),
    ],
)
def test_bad_config_is_one_line_naming_the_key(
    tmp_path: Path, text: str, env: dict[str, str], needle: str
) -> None:
    message = error_of(write(tmp_path, text), env)
    assert needle in message, message


def test_missing_secret_file_names_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, "postgres:\n  targets:\n    - {name: a, password_file: /nope/pw}\n")
    message = error_of(path)
    assert "postgres.targets.0.password_file" in message
    assert "/nope/pw" in message


def test_durations_and_thresholds_parse() -> None:
    assert [fields.parse_duration(t) for t in ("500ms", "5s", "2m", "1h", 7)] == [
        0.5,
        5.0,
        120.0,
        3600.0,
        7.0,
    ]
    assert parse_threshold("75%") == Threshold(75, True)
    assert parse_threshold(" 150 ") == Threshold(150)
    assert Threshold(75, True).resolve(200) == 150
    assert Threshold(75, True).resolve(None) is None
    with pytest.raises(ValueError, match="duration"):
        fields.parse_duration("5 parsecs")


def test_docker_reads_cgroups_under_the_mounted_host() -> None:
    assert str(load(None, {}).docker.cgroup_root) == "/sys/fs/cgroup"
    mounted = load(None, {"POOLWATCH_ROOTFS": "/host/root"})
    assert str(mounted.docker.cgroup_root) == "/host/root/sys/fs/cgroup"
    told = load(None, {"POOLWATCH_ROOTFS": "/host/root", "POOLWATCH_DOCKER_CGROUP_ROOT": "/cg"})
    assert str(told.docker.cgroup_root) == "/cg"


def test_environment_merges_into_the_yaml_target_of_the_same_name(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
postgres:
  targets:
    - {name: main, dsn: postgresql://old@db/app, interval: 1m}
    - {name: replica, dsn: postgresql://mon@replica/app}
webhooks:
  - {name: audit, url: http://old.example/hook, retry_max: 30s}
""",
    )
    config = load(
        path,
        {
            "POOLWATCH_POSTGRES_DSN": "postgresql://new@db/app",
            "POOLWATCH_WEBHOOK_URL": "http://audit.example/hook",
        },
    )
    main, replica = config.postgres.targets
    assert (main.name, main.dsn, main.interval) == ("main", "postgresql://new@db/app", 60.0)
    assert replica.name == "replica"
    (hook,) = config.webhooks
    assert (hook.url, hook.retry_max) == ("http://audit.example/hook", 30.0)
    message = error_of(
        path,
        {
            "POOLWATCH_REDIS_URL": "redis://x",
            "POOLWATCH_POSTGRES_DSN": "postgresql://x",
            "POOLWATCH_WEBHOOK_URL": "ftp://nope",
        },
    )
    assert "webhooks.0.url (from POOLWATCH_WEBHOOK_URL)" in message
