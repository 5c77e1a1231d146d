"""What the evaluator reads of a rule: the `Threshold` value and the `RuleView` protocol.

The configuration's pydantic `Rule` (config/rules.py) parses and validates; the pure core only
reads, so it names this protocol and never imports config. A `Rule` is a `RuleView` as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol


@dataclass(frozen=True, slots=True)
class Threshold:
    """An absolute number, or a percentage of the reading's limit (`"75%"`)."""

    number: float
    percent: bool = False

    def resolve(self, limit: float | None) -> float | None:
        """The absolute value to compare with; None when a percentage has no limit to apply to."""
        if not self.percent:
            return self.number
        return None if limit is None else limit * self.number / 100.0

    def __str__(self) -> str:
        text = f"{self.number:g}"
        return f"{text}%" if self.percent else text


class RuleView(Protocol):
    """One check's thresholds, direction and the state machine's timing, read-only."""

    @property
    def alert(self) -> str: ...
    @property
    def alert_critical(self) -> str | None: ...
    @property
    def warning(self) -> Threshold | None: ...
    @property
    def critical(self) -> Threshold | None: ...
    @property
    def direction(self) -> Literal["above", "below"]: ...
    @property
    def for_(self) -> int: ...
    @property
    def clear_for(self) -> int: ...
    @property
    def hysteresis(self) -> float: ...
    @property
    def repeat(self) -> float: ...
    @property
    def enabled(self) -> bool: ...

    def name_for(self, severity_is_critical: bool) -> str:
        """The alert's name at this severity (`alert_critical` when critical and set)."""
        ...
