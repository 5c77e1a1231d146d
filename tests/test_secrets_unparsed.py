"""A credential URL or DSN that does not parse never shows its password: not in the loader's error,
not in `--check-config`, not in the `reload_failed` line of a SIGHUP, and with `_FILE` the error
names the variable that was really set.

Reproduced: a password with an unencoded `/`, `#` or `?` (base64 passwords have `/` and `+`) ends
the host early, so urllib finds no `user:pass@`, and the error said "the port 'Zm9v' is not a port
number" beside the value in full. The class is tested: passwords made of base64 runs and the
characters that end a host (`/ # ? + = @ :`), and `openssl rand -base64`-like ones, in every
secret-bearing URL the configuration has.
"""

from __future__ import annotations

import base64
import re
import signal
import string
import subprocess
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from poolwatch.config.load import ConfigError, load
from poolwatch.config.secrets import redacted, secret_values
from tests.daemon import Daemon
from tests.daemon import poolwatch as run

SPECIALS = "/#?+=@:"
URLS = [
    # (variable, template): every secret-bearing URL a variable sets
    ("POOLWATCH_POSTGRES_DSN", "postgresql://mon:{pw}@db.example:{port}/app"),
    ("POOLWATCH_PGBOUNCER_DSN", "postgresql://mon:{pw}@bouncer.example:{port}/pgbouncer"),
    ("POOLWATCH_REDIS_URL", "redis://:{pw}@cache.example:{port}/0"),
    ("POOLWATCH_WEBHOOK_URL", "https://hook:{pw}@hook.example:{port}/x"),
    ("POOLWATCH_ALERTMANAGER_URL", "http://am:{pw}@am.example:{port}"),
]
QUIET = {"POOLWATCH_HOST_STATS": "off", "POOLWATCH_DOCKER": "off"}


@st.composite
def runs(draw: st.DrawFn) -> str:
    """A piece of password that no message of poolwatch's own could hold by chance."""
    body = draw(st.text(string.ascii_letters + string.digits, min_size=2, max_size=8))
    return (
        body
        + draw(st.sampled_from(string.ascii_uppercase))
        + draw(st.sampled_from(string.digits))
        + draw(st.sampled_from(string.ascii_lowercase))
    )


@st.composite
def passwords(draw: st.DrawFn) -> str:
    if draw(st.booleans()):  # `openssl rand -base64 24`
        return base64.b64encode(draw(st.binary(min_size=12, max_size=32))).decode()
    pieces = draw(st.lists(runs(), min_size=1, max_size=4))
    separators = draw(
        st.lists(
            st.text(SPECIALS, min_size=1, max_size=3), min_size=len(pieces), max_size=len(pieces)
        )
    )
    leading = draw(st.booleans())
    password = ""
    for piece, separator in zip(pieces, separators, strict=True):
        password += separator + piece if leading else piece + separator
    return password


def leaked(password: str, text: str) -> list[str]:
    """The pieces of `password` (runs of five or more letters and digits) found in `text`."""
    return [run for run in re.findall(r"[A-Za-z0-9]{5,}", password) if run in text]


@settings(max_examples=300, deadline=None)
@given(
    password=passwords(),
    url=st.sampled_from(URLS),
    port=st.sampled_from([5432, 99999]),
)
def test_the_loader_never_shows_a_password_in_an_error_or_the_redacted_config(
    password: str, url: tuple[str, str], port: int
) -> None:
    variable, template = url
    value = template.format(pw=password, port=port)
    try:
        config = load(None, {**QUIET, variable: value})
    except ConfigError as exc:
        text = str(exc)
        assert leaked(password, text) == [], text
        assert f"(from {variable})" in text
        return
    # accepted: shown masked, and the scrubber learns the password as it is, not a piece of it
    shown = yaml.safe_dump(redacted(config))
    assert leaked(password, shown) == [], shown
    assert password in set(secret_values(config))


def poolwatch(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run(*args, env={**QUIET, **env}, timeout=30)


def test_the_reported_base64_password_is_not_shown_nor_quoted_as_a_port() -> None:
    done = poolwatch(
        "--check-config",
        env={"POOLWATCH_POSTGRES_DSN": "postgresql://pw:Zm9v/YmFy+SECRET==@host/db"},
    )
    assert done.returncode == 3
    assert done.stderr.count("\n") == 1, done.stderr
    for piece in ("Zm9v", "YmFy", "SECRET"):
        assert piece not in done.stderr
    assert "'postgresql://***@host/***'" in done.stderr  # scheme and host, nothing else
    assert "percent-encode" in done.stderr


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(password=passwords(), from_file=st.booleans(), port=st.sampled_from([5432, 99999]))
def test_check_config_never_shows_a_password(
    tmp_path: Path, password: str, from_file: bool, port: int
) -> None:
    """The real CLI, the DSN given directly or through `_FILE`; the error names the variable
    that was set."""
    value = f"postgresql://mon:{password}@db.example:{port}/app"
    if from_file:
        secret = tmp_path / "dsn"
        secret.write_text(value + "\n")
        env = {"POOLWATCH_POSTGRES_DSN_FILE": str(secret)}
    else:
        env = {"POOLWATCH_POSTGRES_DSN": value}
    done = poolwatch("--check-config", env=env)
    assert leaked(password, done.stdout + done.stderr) == [], done.stdout + done.stderr
    if done.returncode == 0:
        assert "postgresql://mon:***@db.example" in done.stdout
        return
    assert done.returncode == 3
    variable = "POOLWATCH_POSTGRES_DSN_FILE" if from_file else "POOLWATCH_POSTGRES_DSN"
    assert f"(from {variable})" in done.stderr


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"POOLWATCH_REDIS_URL": "redis://:c2Vj/cmV0@cache:6379/0"}, "POOLWATCH_REDIS_URL"),
        ({"POOLWATCH_WEBHOOK_URL": "https://u:c2Vj#cmV0@hook.example/x"}, "POOLWATCH_WEBHOOK_URL"),
        ({"POOLWATCH_POSTGRES_DSN": "mon:c2VjcmV0@db/app"}, "neither a URI"),
        # a comma in the password splits the list: the first piece's "port" is a piece of it
        ({"POOLWATCH_ALERTMANAGER_URL": "http://am:c2Vj,cmV0@am.example:9093"}, "alertmanager"),
    ],
)
def test_every_mode_refuses_a_misread_password_without_it(env: dict[str, str], says: str) -> None:
    for mode in (("--check-config",), ("--once", "--format", "json"), ()):
        done = poolwatch(*mode, env=env)
        assert done.returncode == 3, done.stderr
        assert says in done.stderr
        assert "c2Vj" not in done.stderr
        assert "cmV0" not in done.stderr
        assert "Traceback" not in done.stderr


VALID = "interval: 300ms\nhost: {enabled: false}\n"


def test_sighup_with_a_misread_password_logs_reload_failed_without_it(tmp_path: Path) -> None:
    """The daemon keeps running; each broken reload is one `reload_failed` JSON line whose
    reason names the key and hides every piece of the password."""
    config = tmp_path / "poolwatch.yaml"
    config.write_text(VALID)
    with Daemon({"POOLWATCH_CONFIG": str(config), **QUIET}) as daemon:
        daemon.wait_for(lambda line: line.get("event") == "started")

        @settings(max_examples=15, deadline=None)
        @given(password=passwords(), port=st.sampled_from([5432, 99999]))
        def reload_with(password: str, port: int) -> None:
            dsn = f"postgresql://mon:{password}@db.example:{port}/app"
            if "/" not in password and "#" not in password and "?" not in password:
                port = 99999  # a value that parses would be applied: keep every reload broken
                dsn = f"postgresql://mon:{password}@db.example:{port}/app"
            body = {"interval": "300ms", "host": {"enabled": False}}
            body["postgres"] = {"targets": [{"name": "main", "dsn": dsn}]}
            config.write_text(yaml.safe_dump(body))
            daemon.proc.send_signal(signal.SIGHUP)
            failed = daemon.wait_for(lambda line: line.get("event") == "reload_failed")
            assert "postgres.targets.0.dsn" in failed["reason"]
            assert leaked(password, str(failed)) == [], failed

        reload_with()
        assert daemon.proc.poll() is None
        assert daemon.stop() == 0
