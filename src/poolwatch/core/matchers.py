"""Matchers of silences and maintenance windows: `key=value`, `key!=value`, `key=~regex`,
`key!~regex`, as Alertmanager writes them (spaces around the operator are ignored).

They select alerts by `alert`, `source`, `instance`, `check`, `severity` and the event's labels;
a label an alert does not have reads as the empty string (Alertmanager's rule), so
`device!=sda` also selects alerts without a `device` label. Regexes match the whole value.
Pure: parsing and matching, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, cast

from poolwatch.core.model import AlertKey, Event

Op = Literal["=", "!=", "=~", "!~"]
FIELDS = ("alert", "source", "instance", "check", "severity")
"""The alert's own fields; any other key is one of its labels."""

_SYNTAX = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*(=~|!~|!=|=)(.*)$", re.DOTALL)


class MatcherError(ValueError):
    """A matcher that cannot be parsed; `str()` says which and why."""


@dataclass(frozen=True, slots=True)
class Matcher:
    key: str
    op: Op
    value: str

    @classmethod
    def parse(cls, text: str) -> Matcher:
        match = _SYNTAX.match(text)
        if match is None:
            raise MatcherError(
                f"matcher {text!r}: expected key=value, key!=value, key=~regex or key!~regex"
            )
        key, op, value = match.group(1), cast(Op, match.group(2)), match.group(3).strip()
        if op in ("=~", "!~"):
            try:
                re.compile(value)
            except re.error as exc:
                raise MatcherError(f"matcher {text!r}: bad regex: {exc}") from None
        return cls(key, op, value)

    def matches(self, fields: Mapping[str, str]) -> bool:
        actual = fields.get(self.key, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = re.fullmatch(self.value, actual) is not None
        return found if self.op == "=~" else not found

    def __str__(self) -> str:
        return f"{self.key}{self.op}{self.value}"


def matches_all(matchers: Sequence[Matcher], fields: Mapping[str, str]) -> bool:
    """All matchers hold (an empty list matches nothing: a silence must say what it mutes)."""
    return bool(matchers) and all(m.matches(fields) for m in matchers)


def alert_fields(alert: str, severity: str, key: AlertKey) -> dict[str, str]:
    """What matchers read of one alert: its labels, then its own fields (which win)."""
    fields = dict(key.labels)
    fields.update(
        source=key.source, instance=key.instance, check=key.check, alert=alert, severity=severity
    )
    return fields


def event_fields(event: Event) -> dict[str, str]:
    return alert_fields(
        event.alert,
        event.severity,
        AlertKey(event.source, event.instance, event.check, tuple(event.labels.items())),
    )
