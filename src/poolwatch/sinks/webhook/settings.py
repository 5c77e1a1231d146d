"""Settings of one webhook sink (docs/sinks/webhook.md documents every key)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, field_serializer, field_validator, model_validator

from poolwatch.config.fields import Duration, ExistingFile, Frozen, HttpUrl, Name, Secret
from poolwatch.config.plugin import EnvVar
from poolwatch.core import secrets as redact
from poolwatch.core.secrets import MASK
from poolwatch.sinks.webhook.signing import signing_key


class WebhookSettings(Frozen):
    ENVIRONMENT: ClassVar[tuple[EnvVar, ...]] = (
        EnvVar("POOLWATCH_WEBHOOK_URL", ("audit", "url")),
        EnvVar("POOLWATCH_WEBHOOK_SECRET", ("audit", "secret"), needs="POOLWATCH_WEBHOOK_URL"),
        EnvVar(
            "POOLWATCH_WEBHOOK_HEARTBEAT", ("audit", "heartbeat"), needs="POOLWATCH_WEBHOOK_URL"
        ),
    )

    name: Name
    url: HttpUrl
    secret: Secret | None = None
    bearer_token: Secret | None = None
    username: str | None = None
    password: Secret | None = None
    headers: dict[str, Secret] = {}
    """Extra request headers. Their values are secrets (an `X-Api-Key`), except those named in
    `public_headers`, which `--check-config` shows."""
    public_headers: list[str] = []
    timeout: Duration = 10.0
    connect_timeout: Duration = 5.0
    ca_file: ExistingFile | None = None
    client_cert: ExistingFile | None = None
    client_key: ExistingFile | None = None
    retry_initial: Duration = 0.5
    retry_max: Duration = 300.0
    max_queue: int = Field(10000, ge=1)
    max_age: Duration = 7 * 86400.0
    heartbeat: Duration | None = None
    """Send a `poolwatch.heartbeat/v1` this often (a dead man's switch); None: never."""
    public_url: bool = False
    """The url holds no secret, so `--check-config` and logs show it whole. By default its path,
    every query value and its fragment are masked, and the scrubber learns them: Slack and
    Discord keep their tokens in the path, Azure in `sig=`, Google Chat in `key=`."""

    @field_validator("secret")
    @classmethod
    def _whsec(cls, secret: Any) -> Any:
        if secret is not None:
            signing_key(secret.get_secret_value())
        return secret

    @model_validator(mode="after")
    def _one_auth(self) -> WebhookSettings:
        if self.bearer_token is not None and (self.username or self.password):
            raise ValueError("use either bearer_token or username/password, not both")
        if (self.password is not None) != (self.username is not None):
            raise ValueError("basic auth needs both username and password")
        if self.client_key is not None and self.client_cert is None:
            raise ValueError("client_key needs client_cert")
        unknown = {name.lower() for name in self.public_headers} - {
            name.lower() for name in self.headers
        }
        if unknown:
            raise ValueError(f"public_headers names {sorted(unknown)} not among headers")
        return self

    @field_serializer("headers", when_used="json")
    def _shown_headers(self, headers: dict[str, Any]) -> dict[str, str]:
        public = {name.lower() for name in self.public_headers}
        return {
            name: value.get_secret_value() if name.lower() in public else MASK
            for name, value in headers.items()
        }

    @field_serializer("url", when_used="json")
    def _shown_url_field(self, _url: str) -> str:
        return self.shown_url()

    def shown_url(self) -> str:
        """The url as `--check-config` and log lines show it (see `public_url`)."""
        return redact.url(self.url) if self.public_url else redact.opaque_url(self.url)

    def more_secrets(self) -> list[str]:
        return [] if self.public_url else redact.opaque_secrets(self.url)

    def header_values(self) -> dict[str, str]:
        """The headers to send, in clear."""
        return {name: value.get_secret_value() for name, value in self.headers.items()}
