"""How a check becomes an alert: thresholds (absolute or a percentage of the reading's limit),
direction, and the timing of the evaluator's state machine."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, PlainSerializer, model_validator

from poolwatch.config.fields import Duration, Fraction, Frozen
from poolwatch.core.rule import Threshold


def parse_threshold(raw: object) -> Threshold:
    if isinstance(raw, Threshold):
        return raw
    if isinstance(raw, bool):
        raise ValueError('expected a number like 150 or a percentage like "75%"')
    if isinstance(raw, int | float):
        return Threshold(float(raw))
    if isinstance(raw, str):
        text = raw.strip()
        percent = text.endswith("%")
        try:
            number = float(text.rstrip("%").strip())
        except ValueError:
            raise ValueError('expected a number like 150 or a percentage like "75%"') from None
        if math.isfinite(number):
            return Threshold(number, percent)
    raise ValueError('expected a number like 150 or a percentage like "75%"')


def _serialize_threshold(value: Threshold) -> float | str:
    return str(value) if value.percent else value.number


ThresholdField = Annotated[
    Threshold, BeforeValidator(parse_threshold), PlainSerializer(_serialize_threshold)
]


OFF = frozenset({"off", "none", "null", "-"})
"""What turns one threshold of a rule off: `CPU_CRITICAL=off` keeps only the warning."""


class Rule(Frozen):
    """How one check becomes an alert: thresholds, direction, and the state machine's timing."""

    alert: str = Field(min_length=1)
    alert_critical: str | None = None
    warning: ThresholdField | None = None
    critical: ThresholdField | None = None
    direction: Literal["above", "below"] = "above"
    for_: int = Field(1, alias="for", ge=1)
    clear_for: int = Field(2, ge=1)
    hysteresis: Fraction = 0.05
    repeat: Duration = 1800.0
    enabled: bool = True

    @model_validator(mode="before")
    @classmethod
    def _off(cls, data: object) -> object:
        if isinstance(data, dict):
            data = {
                key: None
                if key in ("warning", "critical")
                and isinstance(value, str)
                and value.strip().lower() in OFF
                else value
                for key, value in data.items()
            }
        return data

    @model_validator(mode="after")
    def _ordered(self) -> Rule:
        w, c = self.warning, self.critical
        if w is not None and c is not None and w.percent == c.percent:
            wrong = w.number > c.number if self.direction == "above" else w.number < c.number
            if wrong:
                side = "above" if self.direction == "above" else "below"
                raise ValueError(
                    f"warning {w} must not be {side} critical {c} (direction {self.direction})"
                )
        return self

    def name_for(self, severity_is_critical: bool) -> str:
        return (self.alert_critical or self.alert) if severity_is_critical else self.alert


Rules = dict[str, Rule]
