"""Secrets are declared once, on the settings models, and every consumer reads that declaration;
scrubbing rewrites free text only, and only whole tokens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from poolwatch.config.fields import Frozen, Secret, secret_field_names
from poolwatch.config.load import ConfigError, load
from poolwatch.config.secrets import redacted, secret_values
from poolwatch.core.secrets import MASK, Scrubber
from tests.daemon import Daemon
from tests.net import free_port

SCRUBBING = [
    # (secret, free text, scrubbed): whole tokens only, never inside a longer word
    (
        "postgres",
        "password authentication failed for user postgres",
        "password authentication failed for user ***",
    ),
    (
        "postgres",
        "could not connect to postgresql server",
        "could not connect to postgresql server",
    ),
    ("redis", "redis: WRONGPASS for redis", "***: WRONGPASS for ***"),
    ("main", "PostgreSQL main: domain maintenance", "PostgreSQL ***: domain maintenance"),
    ("a", "a bad answer from alpha", "*** bad answer from alpha"),
    (
        "p@ss.w*rd(1)",
        "auth p@ss.w*rd(1) refused; p@ssXw*rd(1) is another",
        "auth *** refused; p@ssXw*rd(1) is another",
    ),
    (
        "app",
        "database app does not exist (app_db is fine)",
        "database *** does not exist (app_db is fine)",
    ),
    (
        "hunter2",
        "cannot reach postgresql://mon:other-pw@db/app",
        "cannot reach postgresql://mon:***@db/app",
    ),
]


@pytest.mark.parametrize(("secret", "text", "expected"), SCRUBBING)
def test_scrubbing_masks_whole_tokens_only(secret: str, text: str, expected: str) -> None:
    assert Scrubber([secret])(text) == expected


def test_the_log_net_leaves_event_fields_alone() -> None:
    """structlog's last processor scrubs reasons, never an event's structured fields."""
    event: dict[str, Any] = {
        "event": "alert",
        "source": "postgres",
        "instance": "main",
        "check": "up",
        "alert": "PostgreSQLDown",
        "labels": {"database": "postgres"},
        "reason": "FATAL: password authentication failed for user postgres",
    }
    out = Scrubber(["postgres", "main"]).log_processor(None, "info", dict(event))
    assert {k: out[k] for k in ("source", "instance", "check", "alert", "labels")} == {
        k: event[k] for k in ("source", "instance", "check", "alert", "labels")
    }
    assert out["reason"] == f"FATAL: password authentication failed for user {MASK}"


def test_a_new_secret_field_is_redacted_everywhere_without_touching_another_file(
    tmp_path: Path,
) -> None:
    """A plugin adds `api_key: Secret` to its model: --check-config's view masks it, the
    scrubber learns it, and `api_key_file` loads it; nothing else was edited."""

    class Plugin(Frozen):
        name: str
        api_key: Secret
        note: str = ""

    key_file = tmp_path / "key"
    key_file.write_text("k3y-value\n")
    plugin = Plugin.model_validate({"name": "x", "api_key_file": str(key_file)})
    assert plugin.api_key.get_secret_value() == "k3y-value"
    assert secret_field_names(Plugin) == {"api_key"}
    assert redacted(plugin) == {"name": "x", "api_key": MASK, "note": ""}
    assert list(secret_values(plugin)) == ["k3y-value"]
    assert Scrubber(secret_values(plugin))("denied for k3y-value") == f"denied for {MASK}"


def test_every_secret_of_the_config_is_known_and_redacted(tmp_path: Path) -> None:
    config_file = tmp_path / "poolwatch.yaml"
    config_file.write_text(
        """
webhooks:
  - name: audit
    url: https://hook.example/x
    bearer_token: tok-s3cret
    headers: {X-Api-Key: key-s3cret, X-Team: dba}
    public_headers: [X-Team]
"""
    )
    config = load(
        config_file,
        {
            "POOLWATCH_POSTGRES_DSN": "postgresql://postgres:pg-s3cret@db/postgres",
            "POOLWATCH_REDIS_URL": "redis://:rd-s3cret@cache:6379/0",
            "POOLWATCH_ALERTMANAGER_URL": "http://u:am-s3cret@am:9093",
        },
    )
    assert set(secret_values(config)) == {
        "tok-s3cret",
        "key-s3cret",
        "dba",
        "pg-s3cret",
        "rd-s3cret",
        "am-s3cret",
        "https://hook.example/x",  # a webhook URL is secret unless declared public_url
        "/x",
    }
    shown = yaml.safe_dump(redacted(config))
    for secret in ("tok-s3cret", "key-s3cret", "pg-s3cret", "rd-s3cret", "am-s3cret"):
        assert secret not in shown
    assert "X-Team: dba" in shown  # a public header is shown
    assert "X-Api-Key: '***'" in shown


def test_every_secret_variable_honours_FILE(tmp_path: Path) -> None:  # noqa: N802 - the suffix
    values = {
        "POOLWATCH_POSTGRES_DSN": "postgresql://u:pw@db/app",
        "POOLWATCH_REDIS_URL": "redis://:pw@cache:6379/0",
        "POOLWATCH_WEBHOOK_URL": "https://hook.example/x",
        "POOLWATCH_ALERTMANAGER_URL": "http://am:9093",
    }
    env = {}
    for name, value in values.items():
        (tmp_path / name).write_text(value + "\n")
        env[f"{name}_FILE"] = str(tmp_path / name)
    config = load(None, env)
    assert config.postgres.targets[0].dsn == values["POOLWATCH_POSTGRES_DSN"]
    assert config.redis.targets[0].url == values["POOLWATCH_REDIS_URL"]
    assert config.webhooks[0].url == values["POOLWATCH_WEBHOOK_URL"]
    assert config.alertmanager.urls == [values["POOLWATCH_ALERTMANAGER_URL"]]


@pytest.mark.integration
def test_password_postgres_leaves_every_event_field_intact(validate_event: Any) -> None:
    """The reported defect: with the everyday password `postgres`, every event said
    `"source": "***"`. Nothing listens on the port, so PostgreSQLDown fires for real."""
    port = free_port()
    env = {
        "POOLWATCH_POSTGRES_DSN": f"postgresql://postgres:postgres@127.0.0.1:{port}/postgres",
        "POOLWATCH_REDIS_URL": f"redis://:redis@127.0.0.1:{free_port()}/0",
        "POOLWATCH_HOST_STATS": "off",
        "POOLWATCH_INTERVAL": "1s",
    }
    with Daemon(env) as daemon:
        down = daemon.wait_for(lambda e: e.get("alert") == "PostgreSQLDown", deadline=30)
        redis_down = daemon.wait_for(lambda e: e.get("alert") == "RedisDown", deadline=30)
    for event in (down, redis_down):
        validate_event({k: v for k, v in event.items() if k not in ("level", "event")})
    assert (down["source"], down["instance"], down["check"]) == ("postgres", "main", "up")
    assert (redis_down["source"], redis_down["instance"]) == ("redis", "main")
    assert down["message"].startswith("PostgreSQL main:")


@pytest.mark.parametrize("headers", ["{X-Api-Key: 90210117}", "'X-Api-Key 90210117'", "[90210117]"])
def test_a_refused_header_value_is_not_shown(tmp_path: Path, headers: str) -> None:
    """A header's value is declared `Secret` (dict[str, Secret]): the loader's refusal names
    the key and hides the value, with no rule of its own for `headers`."""
    config_file = tmp_path / "poolwatch.yaml"
    config_file.write_text(
        f"webhooks:\n  - name: audit\n    url: https://hook.example/x\n    headers: {headers}\n"
    )
    with pytest.raises(ConfigError) as refused:
        load(config_file, {})
    message = str(refused.value)
    assert "webhooks.audit.headers" in message or "webhooks.0.headers" in message, message
    assert "90210117" not in message
