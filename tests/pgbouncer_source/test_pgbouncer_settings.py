"""The PgBouncer section of the config: its variable, its secret, and DSNs refused at load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from poolwatch.config.load import ConfigError, load
from poolwatch.config.secrets import redacted


def test_variable_defines_main_with_the_defaults() -> None:
    env = {"POOLWATCH_PGBOUNCER_DSN": "postgresql://mon:pw-s3cret@pgb:6432/pgbouncer"}
    config = load(None, env)
    (target,) = config.pgbouncer.targets
    assert target.name == "main"
    assert target.rules["pool_saturated"].for_ == 2
    assert target.rules["up"].alert == "PgBouncerDown"
    assert "pw-s3cret" not in json.dumps(redacted(config))


def test_dsn_and_password_from_files(tmp_path: Path) -> None:
    dsn = tmp_path / "dsn"
    dsn.write_text("host=pgb port=6432 user=mon dbname=pgbouncer\n")
    password = tmp_path / "password"
    password.write_text("file-s3cret\n")
    config_file = tmp_path / "poolwatch.yaml"
    config_file.write_text(
        f"pgbouncer:\n  targets:\n    - name: edge\n      password_file: {password}\n"
    )
    config = load(config_file, {"POOLWATCH_PGBOUNCER_DSN_FILE": str(dsn)})
    edge, main = sorted(config.pgbouncer.targets, key=lambda t: t.name)
    assert edge.password is not None
    assert edge.password.get_secret_value() == "file-s3cret"
    assert main.dsn == "host=pgb port=6432 user=mon dbname=pgbouncer"


@pytest.mark.parametrize(
    ("dsn", "needle"),
    [
        ("postgresql://mon:pw-s3cret@pgb:6432/app", "is not the admin console"),
        ("host=pgb dbname=app", "is not the admin console"),
        ("postgresql://mon:pw-s3cret@pgb:99999/pgbouncer", "is not a port number"),
        ("redis://pgb:6379/0", "is not PostgreSQL"),
    ],
)
def test_bad_dsn_is_refused_naming_the_key_without_the_password(dsn: str, needle: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(None, {"POOLWATCH_PGBOUNCER_DSN": dsn})
    message = str(caught.value)
    assert "pgbouncer.targets.0.dsn (from POOLWATCH_PGBOUNCER_DSN)" in message
    assert needle in message
    assert "pw-s3cret" not in message
