"""Settings that can never fire on the server as it is: the operator's blind spots, said aloud.

An absolute threshold at or above the limit the server enforces (150/180 connections on a
PostgreSQL left at its default `max_connections = 100`) can never be crossed before the pool is
full, and a configured `max_connections` / `max_clients` above the server's own makes
percentages of it unreachable too. Nothing is wrong with the value itself, so the loader cannot
refuse it: only a poll knows the server's limit. This module finds such settings in one poll's
readings, purely; the runtime says each once (and again when the limit changes), `--once` shows
them, `/metrics` exposes them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from poolwatch.core.describe import SOURCE_TITLES, number
from poolwatch.core.evaluate import rule_for
from poolwatch.core.model import Reading
from poolwatch.core.rule import RuleView


@dataclass(frozen=True, slots=True)
class LimitNote:
    """One setting of `source`/`instance` that cannot take effect against the server's `limit`.

    `setting` is its path under the source's section (`rules.connections.critical`,
    `max_connections`): what an operator searches for in the config.
    """

    source: str
    instance: str
    setting: str
    value: float
    limit: float
    check: str
    """The check the setting judges (for a configured limit: the count measured against it)."""

    @property
    def key(self) -> tuple[str, str, str]:
        return self.source, self.instance, self.setting

    @property
    def threshold(self) -> bool:
        """A threshold (`rules.…`), not a configured limit."""
        return self.setting.startswith("rules.")

    def describe(self, origin: str) -> str:
        """One line: the key, where it came from, its value and the server's limit."""
        title = SOURCE_TITLES.get(self.source, self.source)
        shown, limit = number(self.value, ""), number(self.limit, "")
        where = f"{self.source}.{self.setting} {shown} (from {origin})"
        if not self.threshold:
            return (
                f"{title} {self.instance}: {where} is above the server's own limit {limit}, "
                "which fullness and percentages are judged against instead"
            )
        return (
            f"{title} {self.instance}: {where} can never fire before the pool is full, at the "
            f"server's own limit {limit}; lower it or write it as a percentage"
        )


def unreachable_thresholds(
    readings: Iterable[Reading], rules: Mapping[str, RuleView]
) -> list[LimitNote]:
    """Every absolute "above" threshold at or above the limit of the reading it judges.

    Percentages follow the limit and so are always reachable; "below" thresholds and yes/no or
    percent readings (whose limit is a scale, not a ceiling) are left alone.
    """
    found: dict[tuple[str, str, str], LimitNote] = {}
    for reading in readings:
        if reading.limit is None or reading.unit in ("bool", "percent"):
            continue
        rule = rule_for(rules, reading)
        if rule is None or not rule.enabled or rule.direction != "above":
            continue
        named = f"{reading.check}@{reading.instance}"
        check = named if named in rules else reading.check
        for level in ("warning", "critical"):
            threshold = getattr(rule, level)
            if threshold is None or threshold.percent or threshold.number < reading.limit:
                continue
            note = LimitNote(
                reading.source,
                reading.instance,
                f"rules.{check}.{level}",
                threshold.number,
                reading.limit,
                reading.check,
            )
            found.setdefault(note.key, note)
    return list(found.values())


def limit_above_server(
    source: str, instance: str, check: str, setting: str, configured: float | None, server: float
) -> list[LimitNote]:
    """A configured limit larger than the one the server enforces (which then wins), said of
    the `check` counted against it."""
    if configured is None or configured <= server:
        return []
    return [LimitNote(source, instance, setting, float(configured), server, check)]


def effective_limit(configured: float | None, server: float | None) -> float | None:
    """The limit readings are judged against: the server's own, or a smaller configured one
    (a budget below the server's ceiling); a configured one when the server gives none."""
    if server is None:
        return configured
    if configured is None:
        return server
    return min(configured, server)
