"""A real Prometheus, started on a free loopback port in a temp dir (Alertmanager peers are
started by tests/stack/test_alertmanager.py, which also restarts them)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.eventually import eventually_sync
from tests.net import free_port


def require(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.fail(f"{binary} is not installed: run tests/provision/40-prometheus.sh")
    return path


def wait_http(url: str, process: subprocess.Popen[bytes], log: Path, deadline: float = 30) -> None:
    """Until `url` answers 200; fail at once if the server exits, with its log either way."""

    def answers() -> bool:
        if process.poll() is not None:
            pytest.fail(f"{url} exited early: {log.read_text()[-2000:]}")
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    eventually_sync(answers, lambda: f"{url} answers: {log.read_text()[-2000:]}", deadline, 0.2)


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    home: Path


def launch(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def prometheus_factory(tmp_path: Path) -> Iterator[object]:
    """Start a Prometheus scraping the given targets every second."""
    started: list[subprocess.Popen[bytes]] = []

    def start(targets: list[str], rules: Path | None = None) -> Server:
        binary = require("prometheus")
        port = free_port()
        home = tmp_path / f"prometheus-{port}"
        home.mkdir()
        rule_files = f"rule_files: ['{rules}']\n" if rules else ""
        (home / "prometheus.yml").write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            + rule_files
            + "scrape_configs:\n  - job_name: poolwatch\n"
            + f"    static_configs: [{{targets: {targets!r}}}]\n"
        )
        log = home / "log"
        process = launch(
            [
                binary,
                f"--config.file={home / 'prometheus.yml'}",
                f"--storage.tsdb.path={home / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            log,
        )
        started.append(process)
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/-/ready", process, log)
        return Server(url, process, home)

    yield start
    for process in started:
        stop(process)
