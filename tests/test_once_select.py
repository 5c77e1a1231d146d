"""`--only` and `--check` on a real `poolwatch --once` process: usage errors, what is polled
at all, and the README's Nagios, NRPE and Checkmk command lines run as written."""

from __future__ import annotations

import re
import shlex
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests import readme
from tests.plugin_syntax import parse_checkmk, parse_plugin_output
from tests.postgres.pgserver import PgServer
from tests.test_cli import poolwatch, results

POOLWATCH = str(Path(sys.executable).with_name("poolwatch"))


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--only", "postgres"], "--only postgres: postgres has no target configured"),
        (["--only", "mysql"], "no source named 'mysql'"),
        (["--only", "host:"], "expected SOURCE or SOURCE:INSTANCE"),
        (["--check", "nope"], "--check nope: no selected source has that check"),
        (["--only", "host", "--check", "connections"], "--check connections: no selected"),
    ],
)
def test_a_selection_of_nothing_configured_is_one_line_and_unknown(
    args: list[str], needle: str
) -> None:
    done = poolwatch("--once", "--format", "nagios", *args)
    assert done.returncode == 3
    assert done.stdout == ""
    assert done.stderr.splitlines() == [done.stderr.strip()]
    assert needle in done.stderr


def test_only_without_once_is_a_usage_error() -> None:
    assert poolwatch("--only", "host").returncode == 3


def test_check_keeps_only_the_named_checks() -> None:
    done = poolwatch("--once", "--format", "json", "--only", "host", "--check", "cpu_percent")
    assert {r["check"] for r in results(done.stdout)} == {"cpu_percent"}


def test_an_instance_matching_no_result_is_unknown() -> None:
    done = poolwatch("--once", "--format", "nagios", "--only", "host:/no/such/mount")
    assert done.returncode == 3
    assert parse_plugin_output(done.stdout).status == "UNKNOWN"


@pytest.fixture
def fake_engine(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A unix socket that stands where the Docker engine would: it only counts callers."""
    path = tmp_path / "docker.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        sock.listen(16)
        sock.setblocking(False)
        yield sock, f"unix://{path}"


def called(sock: socket.socket) -> bool:
    try:
        conn, _ = sock.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


def test_only_selects_before_polling_docker_is_not_even_probed(
    fake_engine: tuple[socket.socket, str],
) -> None:
    sock, url = fake_engine
    env = {"POOLWATCH_DOCKER": "auto", "DOCKER_HOST": url}
    done = poolwatch("--once", "--format", "json", "--only", "host", env=env, timeout=120)
    assert {r["source"] for r in results(done.stdout)} == {"host"}
    assert not called(sock)
    # without --only the same run does probe it: the assertion above can fail
    poolwatch("--once", "--format", "json", env=env, timeout=120)
    assert called(sock)


def readme_command(language: str, pattern: str) -> list[str]:
    blocks = readme.code_blocks("README.md", language)
    assert len(blocks) == 1
    match = re.search(pattern, blocks[0], re.M)
    assert match, f"README ```{language} block lacks {pattern!r}"
    return shlex.split(match.group(1))


def run_as_written(argv: list[str], config: Path) -> subprocess.CompletedProcess[str]:
    argv = [POOLWATCH if a == "/usr/local/bin/poolwatch" else a for a in argv]
    argv = [str(config) if a == "/etc/poolwatch/poolwatch.yaml" else a for a in argv]
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )


@pytest.fixture
def pg_config(pg: PgServer, tmp_path: Path) -> Path:
    path = tmp_path / "poolwatch.yaml"
    config = {
        "state_dir": str(tmp_path),
        "docker": {"enabled": "off"},
        "host": {"enabled": False},
        "postgres": {"targets": [{"name": "main", "dsn": pg.dsn()}]},
    }
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.integration
def test_readme_nagios_and_nrpe_commands_print_valid_plugin_output(pg_config: Path) -> None:
    nagios = readme_command("nagios", r"command_line\s+(.*)$")
    nrpe = readme_command("nrpe", r"^command\[\w+\]=(.*)$")
    for written in (nagios, nrpe):
        # the service passes the instance as $ARG1$
        done = run_as_written([a.replace("$ARG1$", "postgres:main") for a in written], pg_config)
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stderr == ""
        out = parse_plugin_output(done.stdout)
        assert out.status == "OK"
        assert out.perfdata["postgres_main_connections"].value == 1
        assert out.perfdata["postgres_main_connections"].max == 197


@pytest.mark.integration
def test_readme_checkmk_local_check_prints_valid_local_check_lines(
    pg_config: Path, tmp_path: Path
) -> None:
    blocks = [b for b in readme.code_blocks("README.md", "sh") if b.startswith("#!/bin/sh\n")]
    assert len(blocks) == 1
    script = tmp_path / "poolwatch-local-check"
    script.write_text(
        blocks[0]
        .replace("/usr/local/bin/poolwatch", POOLWATCH)
        .replace("/etc/poolwatch/poolwatch.yaml", str(pg_config))
    )
    done = subprocess.run(
        ["sh", str(script)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0
    (service,) = parse_checkmk(done.stdout)
    assert (service.status, service.service) == (0, "poolwatch postgres main")
    # the default 75 % / 90 % of the server's usable 197
    assert service.metrics["connections"] == [1, 147.75, 177.3, 0, 197]
