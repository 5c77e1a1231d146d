"""The command line as users run it: a real `poolwatch` process, its output and exit code."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from poolwatch.sources.host.readings import CHECKS
from tests.daemon import Daemon, poolwatch


def results(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_once_on_the_default_prints_one_result_per_host_check() -> None:
    # thresholds far away, so that a busy CI machine still counts as quiet
    done = poolwatch(
        "--once",
        env={
            "CPU_WARNING": "off",
            "CPU_CRITICAL": "off",
            "MEMORY_WARNING": "off",
            "MEMORY_CRITICAL": "off",
        },
    )
    assert done.returncode == 0, done.stderr
    checks = {(r["check"]) for r in results(done.stdout)}
    assert checks == set(CHECKS)
    for result in results(done.stdout):
        assert result["severity"] == "ok"
        assert set(result) >= {
            "source",
            "instance",
            "check",
            "value",
            "unit",
            "limit",
            "severity",
            "threshold",
            "message",
        }


def test_once_with_cpu_warning_zero_exits_1() -> None:
    done = poolwatch("--once", env={"CPU_WARNING": "0", "CPU_CRITICAL": "off"})
    assert done.returncode == 1, done.stdout + done.stderr
    (cpu,) = [r for r in results(done.stdout) if r["check"] == "cpu_percent"]
    assert (cpu["severity"], cpu["alert"], cpu["threshold"]) == ("warning", "HighCPUUsage", 0)


def test_once_with_disk_critical_one_percent_exits_2() -> None:
    done = poolwatch("--once", env={"DISK_CRITICAL": "1%"})
    assert done.returncode == 2, done.stdout + done.stderr
    disks = [r for r in results(done.stdout) if r["check"] == "disk_percent"]
    assert disks
    assert all(d["severity"] == "critical" for d in disks)
    assert disks[0]["alert"] == "DiskSpaceCritical"


def test_once_table_format() -> None:
    done = poolwatch("--once", "--format", "table")
    assert done.stdout.splitlines()[0].split()[:4] == ["SEVERITY", "SOURCE", "INSTANCE", "CHECK"]
    assert "cpu_percent" in done.stdout


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("interval: [5s\n", "not valid YAML"),
        ("hostt: {}\n", "hostt: unknown key"),
        ("interval: -1s\n", "interval: '-1s'"),
        (
            "host:\n  rules:\n    disk_percent: {warning: 95%, critical: 90%}\n",
            "host.rules.disk_percent: warning 95% must not be above critical 90%",
        ),
    ],
)
def test_check_config_rejects_with_one_line(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    done = poolwatch("--check-config", "--config", str(path))
    assert done.returncode == 3
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert needle in lines[0]


def test_check_config_prints_effective_config_without_secrets(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("whsec_YS10ZXN0LXNpZ25pbmcta2V5LW9mLTMyLWJ5dGVzISE=")
    done = poolwatch(
        "--check-config",
        env={
            "POOLWATCH_POSTGRES_DSN": "postgresql://mon:hunter2@db/app",
            "POOLWATCH_WEBHOOK_URL": "http://127.0.0.1:9/hook",
            "POOLWATCH_WEBHOOK_SECRET_FILE": str(secret),
            "CPU_WARNING": "70%",
        },
    )
    assert done.returncode == 0, done.stderr
    assert "hunter2" not in done.stdout
    assert "whsec_" not in done.stdout
    assert "postgresql://mon:***@db/app" in done.stdout
    assert "warning: 70%" in done.stdout


def test_help_and_version() -> None:
    helped = poolwatch("--help")
    assert helped.returncode == 0
    assert "exit codes" in helped.stdout
    assert "--once" in helped.stdout
    assert poolwatch("--version").stdout.startswith("poolwatch ")


# --- the daemon --------------------------------------------------------------------------------


@pytest.fixture
def cpu_load() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Busy loops, one per core, that the test starts and stops."""
    workers: list[subprocess.Popen[bytes]] = []
    yield workers
    for worker in workers:
        worker.kill()
        worker.wait()


def start_load(workers: list[subprocess.Popen[bytes]]) -> None:
    for _ in range(os.cpu_count() or 1):
        workers.append(subprocess.Popen([sys.executable, "-c", "while True: pass"]))


def stop_load(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        worker.kill()
        worker.wait()
    workers.clear()


def test_daemon_fires_once_resolves_and_stops_on_sigterm(
    cpu_load: list[subprocess.Popen[bytes]], validate_event: Any, tmp_path: Path
) -> None:
    config = tmp_path / "poolwatch.yaml"
    config.write_text(
        "interval: 500ms\nshutdown_timeout: 1s\n"
        "host:\n  rules:\n    cpu_percent: {warning: 90%, critical: null, clear_for: 2}\n"
    )
    daemon = Daemon(
        {"POOLWATCH_CONFIG": str(config), "DISK_WARNING": "100%", "MEMORY_WARNING": "100%"}
    )
    try:
        started = daemon.wait_for(lambda line: line.get("event") == "started")
        assert started["sources"] == [f"host:{os.uname().nodename}"]
        start_load(cpu_load)
        firing = daemon.wait_for(
            lambda line: line.get("alert") == "HighCPUUsage" and line["status"] == "firing"
        )
        validate_event(firing)
        assert firing["level"] == "warning"
        stop_load(cpu_load)
        resolved = daemon.wait_for(
            lambda line: line.get("alert") == "HighCPUUsage" and line["status"] == "resolved"
        )
        validate_event(resolved)
        assert resolved["since"] == firing["since"]
        cpu_events = [line for line in daemon.lines if line.get("alert") == "HighCPUUsage"]
        assert [e["status"] for e in cpu_events] == ["firing", "resolved"]  # no repeat while steady
    finally:
        daemon.proc.send_signal(signal.SIGTERM)
        code = daemon.proc.wait(timeout=2)
        tail = daemon.wait_for(lambda line: line.get("event") == "stopped", deadline=5)
        assert daemon.proc.stdout is not None
        daemon.proc.stdout.close()
    assert code == 0
    assert tail["level"] == "info"


def test_unreachable_source_is_critical_not_unknown() -> None:
    done = poolwatch(
        "--once",
        env={
            "POOLWATCH_POSTGRES_DSN": "postgresql://u:pw@127.0.0.1:1/x",
            "POOLWATCH_HOST_STATS": "off",
        },
    )
    assert done.returncode == 2, done.stdout + done.stderr
    (up,) = [r for r in results(done.stdout) if r["check"] == "up"]
    assert up["source"] == "postgres"
    assert up["severity"] == "critical"
    assert "pw" not in done.stdout.replace("postgres", "") + done.stderr


def test_a_usage_error_is_unknown_not_critical() -> None:
    done = poolwatch("--once", "--format", "xml")
    assert done.returncode == 3
    assert "invalid choice" in done.stderr
    assert poolwatch("--notify").returncode == 3
