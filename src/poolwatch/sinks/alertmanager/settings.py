"""Settings of the Alertmanager sink (docs/sinks/alertmanager.md documents every key); it is on
when `urls` is not empty."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from pydantic import Field, field_validator

from poolwatch.config.fields import Duration, ExistingFile, HttpUrl
from poolwatch.config.plugin import EnvVar, Section, SourceSettings
from poolwatch.core.secrets import url as redact_url


class AlertmanagerSettings(Section):
    ENVIRONMENT: ClassVar[tuple[EnvVar, ...]] = (
        EnvVar("POOLWATCH_ALERTMANAGER_URL", ("urls",), split=True),
    )

    urls: list[HttpUrl] = []
    timeout: Duration = 10.0
    resend_interval: Duration = 60.0
    resolved_resend: Duration = 300.0
    generator_url: str | None = None
    teams: dict[str, str] = {}
    """The `team` label per source: each source's own `TEAM` (`settle`) unless named here."""
    ca_file: ExistingFile | None = None
    retry_initial: Duration = 0.5
    retry_max: Duration = 30.0
    max_queue: int = Field(10000, ge=1)
    max_age: Duration = 3600.0

    @classmethod
    def settle(
        cls,
        section: dict[str, Any],
        merged: Mapping[str, Any],
        said: Mapping[str, Any],
        sources: Sequence[type[SourceSettings]],
    ) -> None:
        """Each source's settings declare its team; a `teams` mapping changes those it names."""
        given = section.get("teams")
        teams = {kind.SOURCE: kind.TEAM for kind in sources}
        section["teams"] = {**teams, **given} if isinstance(given, dict) else given or teams

    @field_validator("urls")
    @classmethod
    def _distinct(cls, urls: list[str]) -> list[str]:
        bases = [type(url)(url.rstrip("/")) for url in urls]
        for url in bases:
            if bases.count(url) > 1:
                raise ValueError(f"{redact_url(url)} is listed twice; each url must be unique")
        return bases
