"""`poolwatch --once`: every enabled check once, judged on its own (no state), as results.

A result is the reading plus its severity: JSON lines for programs, a table for people. The exit
code is the worst severity, Nagios-style.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, TextIO

from poolwatch.core.describe import describe_reading, number
from poolwatch.core.evaluate import judge, rule_for, threshold_for
from poolwatch.core.matchers import alert_fields
from poolwatch.core.model import Reading, Severity
from poolwatch.core.mute import Mute
from poolwatch.runtime.scheduler import Runner
from poolwatch.sources import Collector


@dataclass(frozen=True, slots=True)
class Result:
    reading: Reading
    severity: Severity
    threshold: float | None
    alert: str | None
    message: str
    warning_at: float | None = None
    """The rule's warning threshold as an absolute value (perfdata's `warn`), when it has one."""
    critical_at: float | None = None
    direction: str = "above"
    """The rule's side: `above` breaches at or above a threshold, `below` at or below."""
    muted_by: str | None = None
    """The silence or maintenance window covering this result's alert, when one does."""

    def unmuted(self) -> Result:
        """What a muted result counts as for the exit code and `--notify`: OK."""
        if self.muted_by is None:
            return self
        return replace(
            self,
            severity=Severity.OK,
            threshold=None,
            alert=None,
            message=f"muted by {self.muted_by}: {self.message}",
        )

    def to_dict(self) -> dict[str, Any]:
        r = self.reading
        data: dict[str, Any] = {
            "source": r.source,
            "instance": r.instance,
            "check": r.check,
            "value": r.value,
            "unit": r.unit,
            "limit": r.limit,
            "labels": dict(r.labels),
            "severity": self.severity.label,
            "threshold": self.threshold,
            "message": self.message,
        }
        if self.alert:
            data["alert"] = self.alert
        if self.muted_by is not None:
            data["muted"] = True
            data["muted_by"] = self.muted_by
        return data


def results_for(collector: Collector, readings: Sequence[Reading]) -> list[Result]:
    results: list[Result] = []
    for reading in readings:
        rule = rule_for(collector.rules, reading)
        if rule is None or not rule.enabled:
            results.append(
                Result(
                    reading,
                    Severity.OK,
                    None,
                    None,
                    describe_reading(reading, Severity.OK, None, None),
                )
            )
            continue
        verdict = judge(reading, rule)
        alert = (
            rule.name_for(verdict.severity == Severity.CRITICAL)
            if verdict.severity != Severity.OK
            else None
        )
        message = describe_reading(reading, verdict.severity, verdict.threshold, rule)
        results.append(
            Result(
                reading,
                verdict.severity,
                verdict.threshold,
                alert,
                message,
                threshold_for(reading, rule, Severity.WARNING),
                threshold_for(reading, rule, Severity.CRITICAL),
                rule.direction,
            )
        )
    return results


async def check_once(runner: Runner) -> list[Result]:
    """Poll every collector once, concurrently, each under its own timeout."""
    polled = await asyncio.gather(*(runner.poll(c) for c in runner.collectors))
    results: list[Result] = []
    for collector, readings in zip(runner.collectors, polled, strict=True):
        results.extend(results_for(collector, readings))
    return results


def mark_muted(results: Sequence[Result], mutes: Sequence[Mute], now: datetime) -> list[Result]:
    """Each result that is not OK and that a mute covers, marked with that mute's id."""
    marked: list[Result] = []
    for result in results:
        if result.severity != Severity.OK and result.alert:
            fields = alert_fields(result.alert, result.severity.label, result.reading.key)
            mute = next((m for m in mutes if m.covers(fields, now)), None)
            if mute is not None:
                result = replace(result, muted_by=mute.id)
        marked.append(result)
    return marked


def worst(results: Sequence[Result]) -> Severity:
    return max((r.severity for r in results), default=Severity.OK)


def write_json(results: Sequence[Result], out: TextIO) -> None:
    for result in results:
        out.write(json.dumps(result.to_dict()) + "\n")


_COLOURS = {Severity.OK: "\033[32m", Severity.WARNING: "\033[33m", Severity.CRITICAL: "\033[31m"}


def write_table(results: Sequence[Result], out: TextIO, *, colour: bool) -> None:
    rows = [("SEVERITY", "SOURCE", "INSTANCE", "CHECK", "VALUE", "MESSAGE")]
    for r in results:
        value = number(r.reading.value, r.reading.unit)
        if r.reading.limit is not None and r.reading.unit != "percent":
            value += f"/{r.reading.limit:g}"
        rows.append(
            (
                r.severity.label.upper() + (" (muted)" if r.muted_by else ""),
                r.reading.source,
                r.reading.instance,
                r.reading.check,
                value,
                r.message,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for index, row in enumerate(rows):
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:5])]
        if colour and index:
            severity = results[index - 1].severity
            cells[0] = f"{_COLOURS[severity]}{cells[0]}\033[0m"
        out.write("  ".join([*cells, row[5]]).rstrip() + "\n")
    muted = sum(1 for r in results if r.muted_by)
    note = f" ({muted} muted, not counted)" if muted else ""
    out.write(f"\nworst: {worst([r.unmuted() for r in results]).label.upper()}{note}\n")
