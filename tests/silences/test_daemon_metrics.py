"""A real daemon, silenced before it starts: /metrics marks the muted alert, stdout has it
muted from the first poll, and a silence window from the config shows as well."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from poolwatch import cli
from tests.daemon import Daemon
from tests.eventually import eventually_sync
from tests.net import free_port

pytestmark = pytest.mark.integration


def scrape(url: str, needle: str, deadline: float = 60) -> str:
    """The first /metrics page that has `needle`; on failure, the end of the last one."""
    last = [""]

    def page() -> str | None:
        try:
            last[0] = httpx.get(url, timeout=5).text
        except httpx.HTTPError:
            last[0] = ""
        return last[0] if needle in last[0] else None

    found: str = eventually_sync(
        page, lambda: f"{needle!r} in /metrics; last page:\n{last[0][-3000:]}", deadline, 0.2
    )
    return found


def test_muted_alerts_on_metrics_and_stdout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    config = tmp_path / "poolwatch.yaml"
    config.write_text(
        "maintenance:\n"
        "  - name: always\n"
        "    cron: '* * * * *'\n"
        "    duration: 2m\n"
        "    timezone: Europe/Berlin\n"
        "    matchers: [check=memory_percent]\n"
        "    comment: every minute, for two\n"
    )
    monkeypatch.setenv("POOLWATCH_STATE_DIR", str(state))
    monkeypatch.delenv("POOLWATCH_CONFIG", raising=False)
    assert cli.main(["silence", "add", "--match", "check=cpu_percent", "--for", "1h",
                     "--comment", "load test"]) == 0  # fmt: skip
    ident = capsys.readouterr().out.strip()
    port = free_port()
    env = {
        "POOLWATCH_CONFIG": str(config),
        "POOLWATCH_STATE_DIR": str(state),
        "POOLWATCH_INTERVAL": "500ms",
        "POOLWATCH_LISTEN": f"127.0.0.1:{port}",
        "CPU_WARNING": "0",
        "CPU_CRITICAL": "off",
        "MEMORY_WARNING": "0",
        "MEMORY_CRITICAL": "off",
        "DISK_WARNING": "off",
        "DISK_CRITICAL": "off",
    }
    with Daemon(env) as daemon:
        created = daemon.wait_for(lambda line: line.get("event") == "silence_created")
        assert created["silence"] == ident
        window = daemon.wait_for(lambda line: line.get("event") == "maintenance_started")
        assert window["silence"] == "maintenance:always"
        firing = daemon.wait_for(
            lambda line: line.get("event") == "alert_firing" and line["check"] == "cpu_percent"
        )
        assert firing["muted_by"] == ident  # muted from the very first poll
        text = scrape(f"http://127.0.0.1:{port}/metrics", "poolwatch_alert_muted{")
        text = scrape(f"http://127.0.0.1:{port}/metrics", 'muted_by="maintenance:always"')
        assert f'check="cpu_percent",muted_by="{ident}"' in text
        assert 'poolwatch_last_successful_poll_timestamp_seconds{source="host"' in text
