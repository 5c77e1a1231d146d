"""A webhook URL is a secret: its path and every query value are masked in `--check-config` and
in log lines, and the scrubber learns them, unless the operator declares it `public_url: true`.

Reproduced: only a `token=` query value was masked, so Azure's `code=`/`sig=`, Google Chat's
`key=` and the Slack and Discord tokens in the path were printed whole by `--check-config` and in
`webhook_ready`. The class is tested: each provider's URL shape with random tokens.
"""

from __future__ import annotations

import string
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.daemon import BASE_ENV
from tests.eventually import eventually_sync
from tests.webhook.receiver import Answer, Receiver

from poolwatch.config.load import load
from poolwatch.config.secrets import redacted, secret_values
from poolwatch.core.secrets import MASK, Scrubber
from poolwatch.core.secrets import url as masked_url

SHAPES = [
    # (URL with {a} and {b} for tokens, what is left of it when masked)
    ("https://hooks.slack.com/services/T{a}/B{a}/{b}", "https://hooks.slack.com/***"),
    ("https://discord.com/api/webhooks/1234567890/{b}", "https://discord.com/***"),
    (
        "https://prod-07.westeurope.logic.azure.com:443/workflows/{a}/triggers/manual/paths/"
        "invoke?api-version=2016-10-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={b}",
        "https://prod-07.westeurope.logic.azure.com:443/***?api-version=***&sp=***&sv=***&sig=***",
    ),
    (
        "https://fn.azurewebsites.net/api/alert?code={b}",
        "https://fn.azurewebsites.net/***?code=***",
    ),
    (
        "https://chat.googleapis.com/v1/spaces/{a}/messages?key={b}&token={a}",
        "https://chat.googleapis.com/***?key=***&token=***",
    ),
    ("https://hook.example/ingest?{b}", "https://hook.example/***?***"),
]
TOKENS = st.text(string.ascii_letters + string.digits + "-_", min_size=16, max_size=40).map(
    lambda t: f"Q7z{t}"  # never a word of poolwatch's own output
)


def load_yaml(body: dict[str, Any]) -> Any:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as file:
        yaml.safe_dump({"host": {"enabled": False}, **body}, file)
    try:
        return load(Path(file.name), {})
    finally:
        Path(file.name).unlink()


@settings(max_examples=200, deadline=None)
@given(shape=st.sampled_from(SHAPES), a=TOKENS, b=TOKENS)
def test_every_path_and_query_token_is_masked_and_learned(
    shape: tuple[str, str], a: str, b: str
) -> None:
    template, masked = shape
    url = template.format(a=a, b=b)
    config = load(None, {"POOLWATCH_HOST_STATS": "off", "POOLWATCH_WEBHOOK_URL": url})
    shown = yaml.safe_dump(redacted(config))
    assert f"url: {masked}" in shown
    assert config.webhooks[0].shown_url() == masked
    for token in (a, b):
        assert token not in shown
    scrub = Scrubber(secret_values(config))
    # what a receiver's error page or a library's message may quote
    for text in (url, f"POST {url.split('.com', 1)[-1]} failed", f"no route for token {b}"):
        scrubbed = scrub(f"answer: {text} (404)")
        assert b not in scrubbed, scrubbed
        assert MASK in scrubbed


@settings(max_examples=50, deadline=None)
@given(shape=st.sampled_from(SHAPES), a=TOKENS, b=TOKENS)
def test_a_url_declared_public_is_shown_whole(shape: tuple[str, str], a: str, b: str) -> None:
    """Whole, but for what is masked in any URL: a password, a `token=` or `password=` value."""
    url = shape[0].format(a=a, b=b)
    config = load_yaml({"webhooks": [{"name": "audit", "url": url, "public_url": True}]})
    shown = config.webhooks[0].shown_url()
    assert shown == masked_url(url)
    assert f"url: {shown}" in yaml.safe_dump(redacted(config), width=1000)
    assert f"/{MASK}" not in shown
    if "token={a}" not in shape[0]:  # a `token=` value is a secret in any URL
        assert not {s for s in secret_values(config) if a in s}  # its path is no secret


def test_a_public_url_keeps_its_password_masked() -> None:
    config = load_yaml(
        {
            "webhooks": [
                {"name": "a", "url": "https://u:pw-s3cret@hook.example/x", "public_url": True}
            ]
        }
    )
    assert config.webhooks[0].shown_url() == "https://u:***@hook.example/x"


def test_check_config_masks_the_slack_token() -> None:
    url = "https://hooks.slack.com/services/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56"
    done = subprocess.run(
        [sys.executable, "-m", "poolwatch", "--check-config"],
        env={**BASE_ENV, "POOLWATCH_WEBHOOK_URL": url},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "url: https://hooks.slack.com/***" in done.stdout
    for piece in ("T0AAAAAAA", "B0BBBBBBB", "xoxSecretTokenValue0123456"):
        assert piece not in done.stdout


@pytest.mark.integration
def test_log_lines_never_show_the_tokens(
    receiver: Receiver, daemon_factory: Any, tmp_path: Path
) -> None:
    """A real daemon and receiver: `webhook_ready` shows the URL masked, and a 404 page that
    quotes the path (as many frameworks' do) is scrubbed in `delivery_rejected`."""
    token, sig = "xoxSecretTokenValue0123456", "SigSecretValue0123456789abc"
    base = receiver.url.rsplit("/", 1)[0]
    url = f"{base}/services/T0AAAAAAA/B0BBBBBBB/{token}?sig={sig}"
    path = url[len(base) :]
    receiver.script.append(Answer(404, body=f"Cannot POST {path}".encode()))
    daemon = daemon_factory(url=url)
    daemon.start()
    eventually_sync(lambda: len(receiver.requests) >= 2, "2 requests", 30, 0.05)
    assert receiver.requests[0].path == path  # the real URL was used
    lines = daemon.lines()
    ready = next(line for line in lines if line.get("event") == "webhook_ready")
    assert ready["url"] == f"{base}/***?sig=***"
    rejected = next(line for line in lines if line.get("event") == "delivery_rejected")
    assert rejected["status"] == 404
    assert "Cannot POST ***" in rejected["response"]
    text = (tmp_path / "stdout-1.log").read_text()
    for piece in (token, sig, "T0AAAAAAA"):
        assert piece not in text
