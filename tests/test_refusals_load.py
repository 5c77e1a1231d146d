"""What the loader used to accept silently, or refuse with the wrong words (issue 24, "Config and
lifecycle"). Every case runs the real CLI (`python -m poolwatch`) on a real file.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.daemon import BASE_ENV

QUIET = {"POOLWATCH_DOCKER": "off"}
MODES = (("--check-config",), ("--once", "--format", "json"), ("--healthcheck",), ())
SECRET = "whsec_YS10ZXN0LXNpZ25pbmcta2V5LW9mLTMyLWJ5dGVzISE="


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "poolwatch", *args],
        env={**BASE_ENV, **QUIET, **(env or {})},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def refused(done: subprocess.CompletedProcess[str]) -> str:
    """The one stderr line of a refusal."""
    assert done.returncode == 3, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    assert "internal error" not in done.stderr
    assert done.stdout == ""
    (line,) = done.stderr.strip().splitlines()
    return line


def config(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "poolwatch.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "key", "first", "again"),
    [
        ("host:\n  enabled: false\ninterval: 5s\nhost:\n  enabled: true\n", "host", 1, 4),
        ("host:\n  enabled: false\n  procfs: /proc\n  enabled: true\n", "enabled", 2, 4),
        ("host: {enabled: false, enabled: true}\n", "enabled", 1, 1),
        ("webhooks:\n  - name: a\n    url: https://h.example/x\n    name: b\n", "name", 2, 4),
    ],
)
def test_a_key_given_twice_is_refused_with_both_lines(
    tmp_path: Path, text: str, key: str, first: int, again: int
) -> None:
    """Reproduced: the last one won, so `host:` written twice silently re-enabled the source."""
    path = config(tmp_path, text)
    for mode in MODES:
        line = refused(run(*mode, "--config", str(path)))
        assert line.startswith(f"poolwatch: config file {path}: line {again}: ")
        assert f"key {key!r} is given twice (first on line {first})" in line


def test_a_merge_key_may_still_be_overridden(tmp_path: Path) -> None:
    path = config(
        tmp_path,
        "defaults: &base {for: 1, clear_for: 2, hysteresis: 5%, repeat: 30m}\n"
        "host:\n  rules:\n    cpu_percent:\n      <<: *base\n      alert: X\n      for: 3\n",
    )
    done = run("--check-config", "--config", str(path))
    assert done.returncode == 0, done.stderr


def test_a_config_file_that_is_not_utf8_is_a_config_error_naming_it(tmp_path: Path) -> None:
    """Reproduced: "internal error: UnicodeDecodeError"."""
    path = config(tmp_path, b"interval: 10s  # caf\xe9 (latin-1)\n")
    for mode in MODES:
        line = refused(run(*mode, "--config", str(path)))
        assert line == (
            f"poolwatch: config file {path}: not UTF-8 text (byte 0xe9 at offset 20); "
            "save it as UTF-8"
        )


def test_an_empty_state_dir_is_refused_not_the_current_directory(tmp_path: Path) -> None:
    """Reproduced: `POOLWATCH_STATE_DIR=` put the queue and heartbeat in the current directory.
    Refused (not read as unset): an empty value is usually a variable that did not expand."""
    for mode in MODES:
        line = refused(run(*mode, env={"POOLWATCH_STATE_DIR": ""}))
        assert "state_dir (from POOLWATCH_STATE_DIR): '': is empty" in line
        assert "unset POOLWATCH_STATE_DIR" in line
    done = subprocess.run(
        [sys.executable, "-m", "poolwatch", "--check-config"],
        env={
            "PATH": BASE_ENV["PATH"],
            "POOLWATCH_CONFIG": str(config(tmp_path, "state_dir: ''\n")),
        },
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert "state_dir: '': is empty" in refused(done)


@pytest.mark.parametrize(
    "env",
    [
        {"POOLWATCH_WEBHOOK_SECRET": SECRET},
        {"POOLWATCH_WEBHOOK_HEARTBEAT": "5m"},
        {"POOLWATCH_WEBHOOK_SECRET": SECRET, "POOLWATCH_WEBHOOK_URL": ""},
    ],
)
def test_a_webhook_secret_or_heartbeat_without_a_webhook_is_refused_with_the_fix(
    env: dict[str, str],
) -> None:
    """Reproduced: silently ignored, so events went unsigned (or no heartbeat) unnoticed."""
    (name,) = [k for k in env if k != "POOLWATCH_WEBHOOK_URL"]
    for mode in MODES:
        line = refused(run(*mode, env=env))
        assert f"{name} is set, but POOLWATCH_WEBHOOK_URL is not" in line
        assert "set POOLWATCH_WEBHOOK_URL too" in line
        assert SECRET not in line


def test_a_webhook_secret_file_without_a_webhook_is_refused_too(tmp_path: Path) -> None:
    secret = tmp_path / "whsec"
    secret.write_text(SECRET + "\n")
    line = refused(run("--check-config", env={"POOLWATCH_WEBHOOK_SECRET_FILE": str(secret)}))
    assert "POOLWATCH_WEBHOOK_SECRET_FILE is set, but POOLWATCH_WEBHOOK_URL is not" in line


def test_the_webhook_variables_apply_to_a_yaml_hook_named_audit(tmp_path: Path) -> None:
    path = config(tmp_path, "webhooks:\n  - {name: audit, url: 'https://h.example/x'}\n")
    done = run(
        "--check-config",
        "--config",
        str(path),
        env={"POOLWATCH_WEBHOOK_SECRET": SECRET, "POOLWATCH_WEBHOOK_HEARTBEAT": "5m"},
    )
    assert done.returncode == 0, done.stderr
    assert "secret: '***'" in done.stdout
    assert "heartbeat: 5m" in done.stdout


def test_a_typod_check_without_alert_says_no_check_named(tmp_path: Path) -> None:
    """Reproduced: "host.rules.cpu_precent.alert: required key is missing"."""
    path = config(tmp_path, "host:\n  rules:\n    cpu_precent: {warning: 90%}\n")
    for mode in MODES:
        line = refused(run(*mode, "--config", str(path)))
        assert "host.rules.cpu_precent: no check named 'cpu_precent'" in line
        assert "cpu_percent" in line.partition("this source has")[2]
        assert "alert" not in line


def test_a_postgres_target_typo_is_named_once_for_the_section_and_its_targets(
    tmp_path: Path,
) -> None:
    path = config(
        tmp_path,
        "host: {enabled: false}\npostgres:\n  rules:\n    conections: {warning: 5}\n"
        "  targets:\n    - {name: main, dsn: 'postgresql://u@db/app'}\n",
    )
    line = refused(run("--check-config", "--config", str(path)))
    assert "postgres.rules.conections: no check named 'conections'" in line
    assert "(the same at postgres.targets.0.rules.conections)" in line


def test_a_top_level_timeout_is_not_judged_against_a_host_source_that_is_off(
    tmp_path: Path,
) -> None:
    """Reproduced: `timeout: 1s` with the host off was refused for the host's disk timeout."""
    off = config(tmp_path, "timeout: 1s\nhost: {enabled: false}\n")
    done = run("--check-config", "--config", str(off))
    assert done.returncode == 0, done.stderr
    on = tmp_path / "on.yaml"
    on.write_text("timeout: 1s\n")
    line = refused(run("--check-config", "--config", str(on)))
    assert "host: disks.timeout 2s must be shorter than the host timeout 1s" in line


def test_healthcheck_on_a_broken_config_is_unknown() -> None:
    """Reproduced: exit 1 (unhealthy), where every other mode says 3 for a bad config."""
    line = refused(run("--healthcheck", env={"POOLWATCH_INTERVAL": "soon"}))
    assert "interval (from POOLWATCH_INTERVAL): 'soon'" in line


def test_every_problem_is_shown_each_on_its_own_line(tmp_path: Path) -> None:
    """Reproduced: `interval: 0` said "(and 5 more problems)" and nothing showed them."""
    path = config(
        tmp_path,
        "interval: 0\nshutdown_timeout: soon\nhost:\n  rules:\n    cpu_precent: {warning: 1}\n",
    )
    for mode in MODES:
        done = run(*mode, "--config", str(path))
        assert done.returncode == 3
        first, *more = done.stderr.strip().splitlines()
        assert first.startswith(
            "poolwatch: config error: interval: 0: expected a positive duration like 500ms"
        )
        assert "(the same at host.interval, postgres.interval, redis.interval" in first
        assert first.endswith("(and 2 more problems, below)")
        assert [line.split(":")[0] for line in more] == [
            "  shutdown_timeout",
            "  host.rules.cpu_precent",
        ]
