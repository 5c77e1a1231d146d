"""A private Icinga 2 for the tests: its own config, state, cache and run dirs in a temp dir,
the checker and an ElasticsearchWriter on loopback, run as the current user (never the
system service).

Why the ElasticsearchWriter: it is the one place where Icinga hands out what it parsed from a
check, all in one document: the state, the output (first line and long output, perfdata taken
out) and every perfdata item split by Icinga's own `PerfdataValue::Parse` into value, warn, crit,
min, max and unit. The REST API would give only the raw perfdata strings and needs a PKI. The
receiver here answers `_bulk` posts as Elasticsearch does and keeps the check results.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import queue
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tests import readme

ICINGA = "icinga2"


def readme_block(language: str) -> str:
    """The README's one code block fenced as ```{language}."""
    blocks = readme.code_blocks("README.md", language)
    assert len(blocks) == 1, f"README.md should have one ```{language} block"
    return str(blocks[0])


class Receiver:
    """An Elasticsearch `_bulk` endpoint on loopback that queues Icinga's check results."""

    def __init__(self) -> None:
        self.results: queue.Queue[dict[str, Any]] = queue.Queue()
        results = self.results

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                for line in body.decode().splitlines():
                    doc = json.loads(line) if line.strip() else {}
                    if doc.get("type") == "icinga2.event.checkresult":
                        results.put(doc)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"took": 1, "errors": false, "items": []}')

            def log_message(self, *_: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Icinga:
    """One private `icinga2 daemon`; `config` is appended to the checker and the writer."""

    def __init__(self, root: Path, receiver: Receiver) -> None:
        if shutil.which(ICINGA) is None:
            pytest.fail("icinga2 is missing: run tests/provision/50-icinga.sh")
        self.root = root
        self.receiver = receiver
        self.log = root / "icinga2.out"
        for name in ("data", "log", "cache", "spool", "run"):
            (root / name).mkdir(parents=True, exist_ok=True)

    def _argv(self, config: Path, *extra: str) -> list[str]:
        dirs = {"DataDir": "data", "LogDir": "log", "CacheDir": "cache", "SpoolDir": "spool"}
        defines = [f"-D{key}={self.root / value}" for key, value in dirs.items()]
        return [
            ICINGA,
            "daemon",
            "-c",
            str(config),
            *defines,
            f"-DInitRunDir={self.root}/run",
            *extra,
        ]

    def _env(self) -> dict[str, str]:
        # Icinga drops privileges to ICINGA2_USER: here, whoever runs the tests
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "ICINGA2_USER": pwd.getpwuid(os.getuid()).pw_name,
            "ICINGA2_GROUP": grp.getgrgid(os.getgid()).gr_name,
        }

    def write_config(self, objects: str) -> Path:
        config = self.root / "icinga2.conf"
        config.write_text(
            'object CheckerComponent "checker" { }\n'
            'object ElasticsearchWriter "results" {\n'
            f'  host = "127.0.0.1"\n  port = {self.receiver.port}\n'
            "  enable_send_perfdata = true\n  flush_interval = 1s\n  flush_threshold = 1\n}\n"
            + objects
        )
        return config

    def validate(self, objects: str) -> subprocess.CompletedProcess[str]:
        """`icinga2 daemon -C`: the config compiles and every object is valid."""
        return subprocess.run(
            self._argv(self.write_config(objects), "-C"),
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    @contextmanager
    def running(self, objects: str) -> Iterator[None]:
        config = self.write_config(objects)
        with self.log.open("a") as log:
            proc = subprocess.Popen(self._argv(config), env=self._env(), stdout=log, stderr=log)
        try:
            yield
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def next_result(self, service: str, timeout: float = 60) -> dict[str, Any]:
        """The next check result of `service` as the writer sent it."""
        while True:
            try:
                doc = self.receiver.results.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(
                    f"no check result from Icinga within {timeout}s; its log:\n"
                    + self.log.read_text()[-3000:]
                ) from None
            if doc.get("service") == service:
                return doc


def perfdata(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """`check_result.perfdata.<label>.<field>` → {label: {field: value}}."""
    prefix = "check_result.perfdata."
    items: dict[str, dict[str, Any]] = {}
    for key, value in doc.items():
        if key.startswith(prefix):
            label, _, field = key[len(prefix) :].rpartition(".")
            items.setdefault(label, {})[field] = value
    return items
