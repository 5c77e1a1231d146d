"""`--format nagios` in its real consumer: Icinga 2 runs the README's `CheckCommand` against a
private PostgreSQL, and the tests read back what Icinga made of it (state, output, perfdata
parsed by Icinga itself; see icinga.py for how)."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml
from tests.icinga.icinga import Icinga, perfdata, readme_block
from tests.postgres.pgserver import Load, PgServer

pytestmark = pytest.mark.integration

POOLWATCH = str(Path(sys.executable).with_name("poolwatch"))
README_BINARY = "/usr/local/bin/poolwatch"
README_CONFIG = "/etc/poolwatch/poolwatch.yaml"
SERVICE = "postgres main"


def poolwatch_config(tmp_path: Path, pg: PgServer) -> Path:
    path = tmp_path / "poolwatch.yaml"
    config = {
        "state_dir": str(tmp_path),
        "docker": {"enabled": "off"},
        "postgres": {
            "targets": [{"name": "main", "dsn": pg.dsn()}],
            "rules": {"connections": {"warning": 10, "critical": 20}},
        },
    }
    path.write_text(yaml.safe_dump(config))
    return path


def objects(config: Path) -> str:
    """The README's CheckCommand with this machine's paths, and a service that checks every
    second (the README's checks every minute; the first check would come at a random time)."""
    command = readme_block("icinga2").split('object Service "postgres main"')[0]
    assert README_BINARY in command
    return (
        command.replace(README_BINARY, POOLWATCH)
        + 'object CheckCommand "pass" { command = [ "/bin/true" ] }\n'
        + 'object Host "db" { check_command = "pass"; enable_active_checks = false }\n'
        + f'object Service "{SERVICE}" {{\n'
        + '  host_name = "db"\n  check_command = "poolwatch"\n'
        + "  check_interval = 1s\n  retry_interval = 1s\n  max_check_attempts = 1\n"
        + f'  vars.poolwatch_config = "{config}"\n'
        + '  vars.poolwatch_only = [ "postgres" ]\n}\n'
    )


async def first_result(icinga: Icinga, config: Path) -> dict[str, Any]:
    """Start Icinga, take its first check result of the service, stop it: a fresh daemon per
    state, so the result read is the one made in that state."""
    with icinga.running(objects(config)):
        return await asyncio.to_thread(icinga.next_result, SERVICE)


def labels_poolwatch_reports(config: Path) -> set[str]:
    """The perfdata labels poolwatch means to send, from the same selection as JSON."""
    done = subprocess.run(
        [POOLWATCH, "--once", "--format", "json", "--config", str(config), "--only", "postgres"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert results, done.stderr
    return {
        elasticsearch_key(
            label_for("_".join([r["source"], r["instance"], r["check"], *r["labels"].values()]))
        )
        for r in results
    }


def label_for(joined: str) -> str:
    """What poolwatch makes of the joined names (README "Monitoring plugin"): `=` and `::`
    replaced, each control character `?`."""
    return CONTROL.sub("?", joined.replace("=", "_").replace("::", "__"))


CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def elasticsearch_key(label: str) -> str:
    """A perfdata label as Icinga's ElasticsearchWriter names its field: `.`, `\\` and spaces
    become `_` (seen with client addresses like `127.0.0.1`); the label poolwatch sent is
    otherwise unchanged."""
    return re.sub(r"[.\\ ]", "_", label)


async def test_icinga_reads_warning_then_critical_then_a_stopped_server_as_critical(
    icinga: Icinga, pg_private: PgServer, tmp_path: Path
) -> None:
    config = poolwatch_config(tmp_path, pg_private)
    load = Load(pg_private)
    try:
        # warning: 12 sessions of the load + poolwatch's own = 13 >= 10
        await load.open(12)
        doc = await first_result(icinga, config)
        assert (doc["check_result.state"], doc["check_result.exit_status"]) == (1, 1)
        first, *long_output = doc["check_result.output"].splitlines()
        assert first.rstrip() == "POOLWATCH WARNING - postgres main connections 13/197 (7%) >= 10"
        assert long_output == [
            # the holders of the pool follow the measurement (poolwatch's own session is not one)
            "WARNING: PostgreSQL main: connections 13/197 (7%), above warning 10"
            " — pw_load@127.0.0.1 12"
        ]
        items = perfdata(doc)
        assert items["postgres_main_connections"] == {
            "value": 13,
            "warn": 10,
            "crit": 20,
            "min": 0,
            "max": 197,
        }
        assert items["postgres_main_up"] == {"value": 1, "crit": 0, "min": 0, "max": 1}
        # connection counts carry the server's usable limit as their max
        assert items["postgres_main_connections_by_user_pw_load"] == {
            "value": 12,
            "min": 0,
            "max": 197,
        }
        longest = items["postgres_main_longest_query_seconds"]
        assert (longest["unit"], longest["warn"], longest["min"]) == ("seconds", 300, 0)
        size = items["postgres_main_database_size_bytes_postgres"]
        assert (size["unit"], size["warn"], size["min"]) == ("bytes", 50_000_000_000, 0)
        assert size["value"] > 1_000_000
        # every item poolwatch sends was parsed (Icinga drops an invalid one with a warning)
        assert set(items) == labels_poolwatch_reports(config)
        assert all(item["min"] == 0 for item in items.values())

        # critical: 22 + 1 = 23 >= 20
        await load.open(10)
        doc = await first_result(icinga, config)
        assert (doc["check_result.state"], doc["check_result.exit_status"]) == (2, 2)
        first = doc["check_result.output"].splitlines()[0].rstrip()
        assert first == "POOLWATCH CRITICAL - postgres main connections 23/197 (12%) >= 20"
        assert perfdata(doc)["postgres_main_connections"] == {
            "value": 23,
            "warn": 10,
            "crit": 20,
            "min": 0,
            "max": 197,
        }
    finally:
        await load.close()

    # stopped: the server is down, which is CRITICAL, not UNKNOWN
    pg_private.stop()
    doc = await first_result(icinga, config)
    assert (doc["check_result.state"], doc["check_result.exit_status"]) == (2, 2)
    first = doc["check_result.output"].splitlines()[0]
    assert first.startswith("POOLWATCH CRITICAL - postgres main down ("), first
    assert perfdata(doc) == {"postgres_main_up": {"value": 0, "crit": 0, "min": 0, "max": 1}}
    assert "Ignoring invalid perfdata" not in icinga.log.read_text()


FORGED_ROLE = "x\nPOOLWATCH OK - injected | fake=1"
"""The issue's role name: on main it ended the first line inside a perfdata label, and Icinga
showed `POOLWATCH OK - injected` as long output and the real explanation as perfdata."""


async def test_icinga_reads_a_role_named_to_forge_a_status_line_as_one_item(
    icinga: Icinga, pg_private: PgServer, tmp_path: Path
) -> None:
    config = poolwatch_config(tmp_path, pg_private)
    admin = await pg_private.admin()
    quoted = '"' + FORGED_ROLE.replace('"', '""') + '"'
    await admin.execute(f"CREATE ROLE {quoted} LOGIN PASSWORD 'forged-pw'")
    await admin.close()
    sessions = [
        await asyncpg.connect(
            host="127.0.0.1",
            port=pg_private.port,
            user=FORGED_ROLE,
            password="forged-pw",
            database="postgres",
            timeout=20,
        )
        for _ in range(12)
    ]
    try:
        doc = await first_result(icinga, config)  # 12 + poolwatch's own = 13 >= 10: warning
        sent = labels_poolwatch_reports(config)
    finally:
        await asyncio.gather(*(s.close(timeout=10) for s in sessions))
    assert (doc["check_result.state"], doc["check_result.exit_status"]) == (1, 1)
    first, *long_output = doc["check_result.output"].splitlines()
    assert first.rstrip() == "POOLWATCH WARNING - postgres main connections 13/197 (7%) >= 10"
    assert long_output == [
        "WARNING: PostgreSQL main: connections 13/197 (7%), above warning 10"
        " — x POOLWATCH OK - injected / fake=1@127.0.0.1 12"
    ]
    items = perfdata(doc)
    assert set(items) == sent
    forged = elasticsearch_key(
        "postgres_main_connections_by_user_x?POOLWATCH OK - injected | fake_1"
    )
    assert items[forged] == {"value": 12, "min": 0, "max": 197}
    assert "Ignoring invalid perfdata" not in icinga.log.read_text()


def test_readme_icinga_objects_are_valid_icinga_config(icinga: Icinga) -> None:
    """The README's CheckCommand and Service, as written, compile in Icinga 2 (`-C`)."""
    text = readme_block("icinga2")
    host = (
        'object Host "db" { check_command = "dummy" }\n'
        'object CheckCommand "dummy" { command = [ "/bin/true" ] }\n'
    )
    done = icinga.validate(text + host)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Instantiated 1 Service" in done.stdout
