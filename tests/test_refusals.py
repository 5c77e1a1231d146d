"""Everything an operator can get wrong is refused at load, the same way in every mode.

Each row goes through the real CLI (`python -m poolwatch`): `--check-config`, `--once` and the
daemon all exit 3 (UNKNOWN) with one line on stderr that names the key, the variable it came
from and what is expected, with a secret's value masked and no traceback. The daemon runs with
POOLWATCH_DOCKER=off and the host source only, so a row that were accepted would keep running:
the timeout then fails the test.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.daemon import BASE_ENV

MODES = (("--check-config",), ("--once", "--format", "json"), ())


def run(args: tuple[str, ...], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "poolwatch", *args],
        env={**BASE_ENV, "POOLWATCH_DOCKER": "off", **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


REFUSED = [
    # (environment, what the one line must say, what it must not say)
    (
        {"POOLWATCH_POSTGRES_DSN": "postgresql://u:pw-s3cret@h:notaport/db"},
        ["postgres.targets.0.dsn", "POOLWATCH_POSTGRES_DSN", "'notaport'", "1 to 65535"],
        ["pw-s3cret"],
    ),
    (
        {"POOLWATCH_POSTGRES_DSN": "mysql://u@h/db"},
        ["POOLWATCH_POSTGRES_DSN", "not PostgreSQL"],
        [],
    ),
    (
        {"POOLWATCH_POSTGRES_DSN": "host=db password='pw-s3cret"},
        ["POOLWATCH_POSTGRES_DSN", "unterminated"],
        ["pw-s3cret"],
    ),
    (
        {"POOLWATCH_REDIS_URL": "http://h:6379/0"},
        ["redis.targets.0.url", "POOLWATCH_REDIS_URL", "'http'", "redis://"],
        [],
    ),
    (
        {"POOLWATCH_REDIS_URL": "redis://:pw-s3cret@h:70000/0"},
        ["POOLWATCH_REDIS_URL", "70000", "1 to 65535"],
        ["pw-s3cret"],
    ),
    (
        {"MEMORY_WARNING": "150%"},
        ["host.rules.memory_percent.warning", "MEMORY_WARNING", "150%", "15%"],
        [],
    ),
    (
        {"DISK_CRITICAL": "250"},
        ["host.rules.disk_percent.critical", "DISK_CRITICAL", "above 100%"],
        [],
    ),
    (
        {"POSTGRES_CONN_WARNING": "120%", "POOLWATCH_POSTGRES_DSN": "postgresql://u@h/db"},
        ["postgres.rules.connections.warning", "POSTGRES_CONN_WARNING"],
        [],
    ),
    (
        {"POOLWATCH_LISTEN": "127.0.0.1:99999"},
        ["listen", "POOLWATCH_LISTEN", "99999", "1 to 65535"],
        [],
    ),
    (
        {"POOLWATCH_LISTEN": "localhost"},
        ["listen", "POOLWATCH_LISTEN", "host:port"],
        [],
    ),
    (
        {"POOLWATCH_ALERTMANAGER_URL": "http://am:99999"},
        ["alertmanager.urls.0", "POOLWATCH_ALERTMANAGER_URL", "99999"],
        [],
    ),
    (
        {"POOLWATCH_WEBHOOK_URL": "http://u:pw-s3cret@hook:99999/x"},
        ["webhooks.0.url", "POOLWATCH_WEBHOOK_URL", "99999"],
        ["pw-s3cret"],
    ),
    (
        {"POOLWATCH_INTERVAL": "5 parsecs"},
        ["interval", "POOLWATCH_INTERVAL", "duration"],
        [],
    ),
    (
        {"CPU_WARNING": "eighty"},
        ["host.rules.cpu_percent.warning", "CPU_WARNING", "number"],
        [],
    ),
    (
        {"POOLWATCH_POSTGRES_DSN_FILE": "/nonexistent/dsn"},
        ["POOLWATCH_POSTGRES_DSN_FILE", "/nonexistent/dsn"],
        [],
    ),
]


@pytest.mark.parametrize("mode", MODES, ids=["check-config", "once", "daemon"])
@pytest.mark.parametrize(("env", "says", "hides"), REFUSED, ids=[str(r[0]) for r in REFUSED])
def test_refused_the_same_way_in_every_mode(
    mode: tuple[str, ...], env: dict[str, str], says: list[str], hides: list[str]
) -> None:
    done = run(mode, env)
    assert done.returncode == 3, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    for text in says:
        assert text in lines[0]
    for text in hides:
        assert text not in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_a_file_setting_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "poolwatch.yaml"
    config.write_text(
        "webhooks:\n  - {name: audit, url: 'https://hook.example/x', ca_file: /nope/ca.pem}\n"
    )
    done = run(("--check-config", "--config", str(config)), {})
    assert done.returncode == 3
    assert "webhooks.0.ca_file" in done.stderr
    assert "/nope/ca.pem does not exist" in done.stderr


def test_a_rule_for_a_check_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "poolwatch.yaml"
    config.write_text("host:\n  rules:\n    cpu_precent: {alert: X, warning: 1}\n")
    done = run(("--check-config", "--config", str(config)), {})
    assert done.returncode == 3
    assert "host.rules.cpu_precent" in done.stderr
    assert "cpu_percent" in done.stderr  # the known names, to pick the right one


def test_a_port_that_cannot_be_bound_is_one_line_naming_listen() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run((), {"POOLWATCH_LISTEN": f"127.0.0.1:{port}"})
    assert done.returncode == 3
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith(f"poolwatch: listen 127.0.0.1:{port}: cannot listen there")
    assert "Traceback" not in done.stderr


def test_a_lone_threshold_that_crosses_a_default_keeps_the_users_and_says_so() -> None:
    """MEMORY_WARNING=97% alone: the default critical 95% would contradict it; it is dropped,
    and both --check-config and the daemon's start say so."""
    done = run(("--check-config",), {"MEMORY_WARNING": "97%"})
    assert done.returncode == 0, done.stderr
    assert "# note: host.rules.memory_percent: warning 97% crosses the default critical 95%" in (
        done.stdout
    )
    once = run(("--once", "--format", "json"), {"MEMORY_WARNING": "97%"})
    assert '"config_note"' in once.stderr


def test_check_config_says_where_the_config_came_from(tmp_path: Path) -> None:
    config = tmp_path / "poolwatch.yaml"
    config.write_text("interval: 20s\n")
    first_line = {
        "env": run(("--check-config",), {"CPU_WARNING": "70%"}).stdout.splitlines()[0],
        "both": run(("--check-config", "--config", str(config)), {}).stdout.splitlines()[0],
        "neither": subprocess.run(
            [sys.executable, "-m", "poolwatch", "--check-config"],
            env={"PATH": BASE_ENV["PATH"]},
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.splitlines()[0],
    }
    assert (
        "(from environment CPU_WARNING, POOLWATCH_DOCKER, POOLWATCH_STATE_DIR)"
        in (first_line["env"])
    )
    assert f"(from file {config} and environment POOLWATCH_DOCKER" in first_line["both"]
    assert "(from built-in defaults)" in first_line["neither"]


@pytest.mark.parametrize("debug", [False, True])
def test_an_internal_error_is_one_line_and_the_traceback_only_with_debug(
    debug: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bug cannot be caused on purpose through a real run, so this one is injected (the only
    stand-in here): whatever escapes is one line on stderr and exit 3, secrets masked."""
    from poolwatch import cli

    def broken(_args: object) -> int:
        raise RuntimeError("boom near postgresql://u:pw-s3cret@db/app\nsecond line")

    monkeypatch.setattr(cli, "_run", broken)
    monkeypatch.delenv("POOLWATCH_DEBUG", raising=False)
    code = cli.main(["--once", *(["--debug"] if debug else [])])
    err = capsys.readouterr().err
    assert code == 3
    assert err.splitlines()[0] == (
        "poolwatch: internal error: RuntimeError: boom near postgresql://u:***@db/app"
    )
    assert ("Traceback" in err) is debug
    assert "second line" not in err.splitlines()[0]
