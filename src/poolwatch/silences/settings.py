"""The muting keys: `maintenance` (recurring windows) and `silences` (limits of ad hoc ones).

Everything is checked at load (matchers, cron, time zone), so a typo is refused by
`--check-config` and never turns into a window that mutes the wrong thing or never opens.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import field_validator, model_validator

from poolwatch.config.fields import Duration, Frozen, Name
from poolwatch.core.matchers import Matcher
from poolwatch.core.schedule import Schedule, check_cron, weekly_cron, zone


class Weekly(Frozen):
    days: list[str]
    start: str
    """Local wall time, `HH:MM`."""


class MaintenanceWindow(Frozen):
    name: Name
    weekly: Weekly | None = None
    cron: str | None = None
    """Five fields (minute hour day month weekday) on the wall clock of `timezone`."""
    duration: Duration
    timezone: str
    matchers: list[str]
    comment: str = ""

    @field_validator("timezone")
    @classmethod
    def _zone(cls, name: str) -> str:
        zone(name)
        return name

    @field_validator("cron")
    @classmethod
    def _cron(cls, expression: str | None) -> str | None:
        return None if expression is None else check_cron(expression)

    @field_validator("matchers")
    @classmethod
    def _matchers(cls, texts: list[str]) -> list[str]:
        if not texts:
            raise ValueError("a window needs at least one matcher (what it mutes)")
        for text in texts:
            Matcher.parse(text)
        return texts

    @model_validator(mode="after")
    def _one_schedule(self) -> MaintenanceWindow:
        if (self.weekly is None) == (self.cron is None):
            raise ValueError("give either weekly (days and start) or cron, not both or neither")
        if self.weekly is not None:
            weekly_cron(self.weekly.days, self.weekly.start)
        return self

    @property
    def id(self) -> str:
        return f"maintenance:{self.name}"

    def schedule(self) -> Schedule:
        cron = self.cron or weekly_cron(self.weekly.days, self.weekly.start)  # type: ignore[union-attr]  # one of the two, checked above
        return Schedule(cron, timedelta(seconds=self.duration), zone(self.timezone))

    def parsed(self) -> tuple[Matcher, ...]:
        return tuple(Matcher.parse(text) for text in self.matchers)


class SilenceSettings(Frozen):
    max_duration: Duration = 7 * 86400.0
    """The longest a silence may last: a forgotten silence ends by itself."""
