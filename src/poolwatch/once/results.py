"""`poolwatch --once`: every enabled check once, judged on its own (no state), as results.

A result is the reading plus its severity: JSON lines for programs, a table for people. The exit
code is the worst severity, Nagios-style.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol, TextIO

from poolwatch.core.causes import DOWN_CHECKS, Causes
from poolwatch.core.context import thaw
from poolwatch.core.dependencies import Node
from poolwatch.core.describe import age, describe_reading, number
from poolwatch.core.evaluate import judge, rule_for, threshold_for
from poolwatch.core.matchers import alert_fields
from poolwatch.core.model import Cause, Reading, Severity
from poolwatch.core.mute import Mute
from poolwatch.core.text import printable
from poolwatch.runtime.limits import Origin, notes_for
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
    notes: tuple[str, ...] = ()
    """Settings of this check that cannot fire against the server's limit, one line each."""
    caused_by: Cause | None = None
    """The parent outage the daemon would hold this result's alert for (core/causes.py)."""

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
        if self.context is not None:
            data["context"] = thaw(self.context)
        if self.muted_by is not None:
            data["muted"] = True
            data["muted_by"] = self.muted_by
        if self.notes:
            data["notes"] = list(self.notes)
        if self.caused_by is not None:
            data["caused_by"] = self.caused_by.to_dict()
        return data

    @property
    def context(self) -> Mapping[str, Any] | None:
        """Who is behind a breach (the event's `context`), shown only when not OK."""
        return self.reading.context if self.severity != Severity.OK else None


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


class Polls(Protocol):
    """What `--once` needs of the pipeline: one poll, a failure as data."""

    async def poll(self, collector: Collector) -> list[Reading]: ...


async def check_once(polls: Polls, collectors: Sequence[Collector], origin: Origin) -> list[Result]:
    """Poll every collector once, concurrently, each under its own timeout; a result whose
    check has a setting that cannot fire against the server's limit carries that note, as
    the daemon logs it."""
    polled = await asyncio.gather(*(polls.poll(c) for c in collectors))
    results: list[Result] = []
    for collector, readings in zip(collectors, polled, strict=True):
        notes: dict[tuple[str, str], list[str]] = {}
        for note in notes_for(collector, readings):
            origin_of = origin(note.source, note.instance, note.setting)
            notes.setdefault((note.instance, note.check), []).append(note.describe(origin_of))
        for result in results_for(collector, readings):
            said = notes.get((result.reading.instance, result.reading.check))
            results.append(replace(result, notes=tuple(said)) if said else result)
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


def mark_caused(
    results: Sequence[Result], parents: Mapping[Node, tuple[Node, ...]], now: datetime
) -> list[Result]:
    """Each result that is not OK and whose parent is down (the daemon would hold its alert),
    marked with the cause, its message saying it: `... (caused by ContainerDied
    docker/matrixon-postgres-1)`."""
    causes = Causes(grace=0.0)
    causes.use(parents)
    causes.observe((r.reading for r in results), now)
    for result in results:
        if result.severity != Severity.OK and result.alert and result.reading.check in DOWN_CHECKS:
            causes.alerts[(result.reading.source, result.reading.instance)] = (result.alert, now)
    marked: list[Result] = []
    for result in results:
        cause = None
        if result.severity != Severity.OK:
            cause = causes.cause_of((result.reading.source, result.reading.instance))
        if cause is not None:
            said = f"{cause.alert} " if cause.alert else "down: "
            message = f"{result.message} (caused by {said}{cause.source}/{cause.instance})"
            result = replace(result, caused_by=cause, message=message)
        marked.append(result)
    return marked


def worst(results: Sequence[Result]) -> Severity:
    return max((r.severity for r in results), default=Severity.OK)


def write_json(results: Sequence[Result], out: TextIO) -> None:
    for result in results:
        out.write(json.dumps(result.to_dict()) + "\n")


_COLOURS = {Severity.OK: "\033[32m", Severity.WARNING: "\033[33m", Severity.CRITICAL: "\033[31m"}


def write_table(results: Sequence[Result], out: TextIO, *, colour: bool) -> None:
    """One row per result, its context lines under it. Every cell and context line goes through
    `printable`: a name's line break would forge a row, its ESC sequence rewrite the terminal."""
    rows: list[tuple[str, ...]] = [("SEVERITY", "SOURCE", "INSTANCE", "CHECK", "VALUE", "MESSAGE")]
    for r in results:
        value = number(r.reading.value, r.reading.unit)
        if r.reading.limit is not None and r.reading.unit != "percent":
            value += f"/{r.reading.limit:g}"
        fields = (
            r.severity.label.upper() + (" (muted)" if r.muted_by else ""),
            r.reading.source,
            r.reading.instance,
            r.reading.check,
            value,
            r.message,
        )
        rows.append(tuple(printable(field) for field in fields))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for index, row in enumerate(rows):
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:5])]
        if colour and index:
            severity = results[index - 1].severity
            cells[0] = f"{_COLOURS[severity]}{cells[0]}\033[0m"
        out.write("  ".join([*cells, row[5]]).rstrip() + "\n")
        if index:
            for line in context_lines(results[index - 1].context):
                out.write(f"    {printable(line)}\n")
            for note in results[index - 1].notes:
                out.write(f"    note: {printable(note)}\n")
    muted = sum(1 for r in results if r.muted_by)
    note = f" ({muted} muted, not counted)" if muted else ""
    out.write(f"\nworst: {worst([r.unmuted() for r in results]).label.upper()}{note}\n")


def context_lines(context: Mapping[str, Any] | None) -> list[str]:
    """The holders and blockers under a breaching row of the table, one per line."""
    if not context:
        return []
    lines: list[str] = []
    for holder in context.get("holders") or ():
        who = holder.get("application") or holder.get("name") or "(unnamed)"
        where = holder.get("client") or holder.get("address") or ""
        user = f" user {holder['user']}" if holder.get("user") else ""
        parts = [f"{n} {state}" for state, n in (holder.get("states") or {}).items()]
        if holder.get("oldest_transaction_seconds") is not None:
            parts.append(f"oldest transaction {age(holder['oldest_transaction_seconds'])}")
        for key in ("blocked", "idle_over_60s"):
            if holder.get(key) is not None:
                parts.append(f"{holder[key]} {key.replace('_', ' ')}")
        if holder.get("max_idle_seconds") is not None:
            parts.append(f"longest idle {age(holder['max_idle_seconds'])}")
        detail = f" ({', '.join(parts)})" if parts else ""
        lines.append(f"holder {who} @ {where}{user}: {holder.get('count')}{detail}")
    if context.get("other_groups"):
        lines.append(f"... and {context['other_groups']} more groups")
    if context.get("waiting_on_locks"):
        lines.append(f"{context['waiting_on_locks']} waiting on locks")
    for blocker in context.get("blockers") or ():
        seconds = blocker.get("state_seconds")
        state = f"{blocker.get('state')} {age(seconds)}" if seconds is not None else ""
        lines.append(
            f"blocker pid {blocker['pid']} {blocker.get('application') or ''}"
            f" user {blocker.get('user')} @ {blocker.get('client')} ({state})"
            f" blocks {blocker['blocking']}"
        )
    for key in ("exit_code", "oom_killed", "restarts_in_window", "last_die_times"):
        if context.get(key) is not None:
            value = context[key]
            shown = ", ".join(value) if isinstance(value, list | tuple) else value
            lines.append(f"{key.replace('_', ' ')}: {shown}")
    if context.get("health_output"):
        lines.append(f"health check: {' '.join(str(context['health_output']).split())}")
    return lines
