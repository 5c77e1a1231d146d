"""One readable sentence per reading or event, e.g.
`PostgreSQL main: connections 156/197 (79%), above warning 150`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from poolwatch.core.model import UP_CHECK, Reading, Severity

if TYPE_CHECKING:
    from poolwatch.config.rules import Rule

SOURCE_TITLES = {
    "postgres": "PostgreSQL",
    "redis": "Redis",
    "host": "Host",
    "docker": "Docker",
    "pgbouncer": "PgBouncer",
}


def number(value: float, unit: str) -> str:
    """A value in its unit, compact: `79.3%`, `1.2 GB`, `3.5 MB/s`, `156`."""
    if unit == "percent":
        return f"{value:.1f}%"
    if unit in ("bytes", "bytes_per_second"):
        suffix = "/s" if unit == "bytes_per_second" else ""
        size = float(value)
        for prefix in ("B", "kB", "MB", "GB", "TB"):
            if abs(size) < 1000 or prefix == "TB":
                text = f"{size:.0f} {prefix}" if prefix == "B" else f"{size:.1f} {prefix}"
                return text + suffix
            size /= 1000
    if unit == "seconds":
        return f"{value:.1f}s"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}"


def subject(reading: Reading) -> str:
    title = SOURCE_TITLES.get(reading.source, reading.source)
    labels = ", ".join(f"{k}={v}" for k, v in reading.labels.items())
    return f"{title} {reading.instance}" + (f" [{labels}]" if labels else "")


def measurement(reading: Reading) -> str:
    if reading.check == UP_CHECK or reading.check.endswith("_up"):  # `up`, a disk's `disk_up`
        state = "up" if reading.value >= 1 else "down"
        return f"{state}" + (f" ({reading.message})" if reading.message else "")
    text = f"{reading.check.replace('_', ' ')} {number(reading.value, reading.unit)}"
    if reading.limit is not None and reading.unit != "percent":
        shown = number(reading.value, reading.unit)
        text = f"{reading.check.replace('_', ' ')} {shown}/{number(reading.limit, reading.unit)}"
        if reading.limit > 0:
            text += f" ({100 * reading.value / reading.limit:.0f}%)"
    if reading.message:
        text += f" ({reading.message})"
    return text


def describe_reading(
    reading: Reading, severity: Severity, threshold: float | None, rule: Rule | None
) -> str:
    text = f"{subject(reading)}: {measurement(reading)}"
    if severity != Severity.OK and threshold is not None and rule is not None:
        side = "above" if rule.direction == "above" else "below"
        text += f", {side} {severity.label} {number(threshold, reading.unit)}"
    return text


def describe_event(
    reading: Reading,
    status: str,
    level: Severity,
    threshold: float | None,
    rule: Rule,
    *,
    gone: bool = False,
    unruled: bool = False,
) -> str:
    if status == "firing":
        return describe_reading(reading, level, threshold, rule)
    if gone:
        return f"{subject(reading)}: {reading.check.replace('_', ' ')} no longer reported; resolved"
    if unruled:
        return (
            f"{subject(reading)}: {reading.check.replace('_', ' ')} no longer judged "
            "(its rule was disabled or removed); resolved"
        )
    side = "below" if rule.direction == "above" else "above"
    limit = f" {level.label} {number(threshold, reading.unit)}" if threshold is not None else ""
    return f"{subject(reading)}: {measurement(reading)}, back {side}{limit}; resolved"
