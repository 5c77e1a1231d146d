"""A cold `--once` with only the host source (a Docker HEALTHCHECK runs it every 30 s) imports
nothing it does not use: no croniter (nor dateutil) without a scheduled silence, no driver of a
disabled source, no `--once` format but the one asked for. Which modules, not how long (bench/
times)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

UNUSED = ("croniter", "dateutil", "asyncpg", "psycopg", "redis", "docker", "httpx")
UNUSED_OWN = ("poolwatch.once.formats.nagios", "poolwatch.once.formats.checkmk",
              "poolwatch.sources.redis.info")  # fmt: skip
"""JSON output needs neither plugin format; no Redis target, no INFO → readings table."""


def test_a_host_only_once_imports_only_what_it_uses(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "POOLWATCH_STATE_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "poolwatch", "--once", "--format", "json"],
        env=env | {"POOLWATCH_DOCKER": "off"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode in (0, 1, 2), done.stderr[-2000:]
    imported = {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }
    # the measurement is real: the host collector's own imports are there (the collector itself
    # is loaded by importlib.import_module, which -X importtime does not time)
    assert "poolwatch.sources.host.probe" in imported
    assert not {m for m in imported if m.split(".")[0] in UNUSED}
    assert not imported & set(UNUSED_OWN)
