"""One readable sentence per reading or event, e.g.
`PostgreSQL main: connections 156/197 (79%), above warning 150`; when the reading carries a
context, a breach also says who is behind it, in the same line (for a chat or `docker logs`):
`... above critical 180 — leaky@10.0.3.7 40 (40 idle in transaction, oldest 13m), busy@local 20;
5 waiting on locks behind pid 4242 (migrate, 6m)`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from poolwatch.core.model import UP_CHECK, Reading, Severity

if TYPE_CHECKING:
    from poolwatch.core.rule import RuleView

# Each source's TITLE on its settings class; core imports no plugin, so the table is here and
# tests/test_registry.py holds it to the registry (`Config.source_types()`).
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


MESSAGE_HOLDERS = 2
"""Holders a message names (the context has more): one line must stay readable in a chat."""


def age(seconds: float) -> str:
    """A duration as a person says it: `45s`, `13m`, `2h05m`."""
    whole = int(max(0.0, seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def _holder(holder: Mapping[str, Any]) -> str:
    who = holder.get("application") or holder.get("name") or holder.get("user") or "(unnamed)"
    where = holder.get("client") or holder.get("address")
    text = f"{who}@{where} {holder.get('count', 0)}" if where else f"{who} {holder.get('count', 0)}"
    notes: list[str] = []
    states = holder.get("states") or {}
    idle_in_transaction = sum(n for s, n in states.items() if s.startswith("idle in transaction"))
    if idle_in_transaction:
        note = f"{idle_in_transaction} idle in transaction"
        oldest = holder.get("oldest_idle_in_transaction_seconds")
        notes.append(note + (f", oldest {age(oldest)}" if oldest is not None else ""))
    if holder.get("blocked"):
        notes.append(f"{holder['blocked']} blocked")
    if holder.get("idle_over_60s"):
        notes.append(f"{holder['idle_over_60s']} idle over 60s")
    return text + (f" ({'; '.join(notes)})" if notes else "")


def _blocker(blocker: Mapping[str, Any]) -> str:
    parts = [str(p) for p in (blocker.get("application") or blocker.get("user"),) if p]
    if blocker.get("state_seconds") is not None:
        parts.append(age(blocker["state_seconds"]))
    return f"pid {blocker.get('pid')}" + (f" ({', '.join(parts)})" if parts else "")


def describe_context(context: Mapping[str, Any] | None) -> str | None:
    """Who is behind a value, in one line: the top holders, the lock waiters and whom they wait
    behind, a container's last exit. None when the context says nothing a person needs."""
    if not context:
        return None
    clauses: list[str] = []
    holders: Sequence[Mapping[str, Any]] = context.get("holders") or ()
    if holders:
        text = ", ".join(_holder(h) for h in holders[:MESSAGE_HOLDERS])
        more = len(holders[MESSAGE_HOLDERS:]) + int(context.get("other_groups") or 0)
        if more:
            text += f", ({more} more)"
        clauses.append(text)
    if context.get("waiting_on_locks"):
        text = f"{context['waiting_on_locks']} waiting on locks"
        blockers = context.get("blockers") or ()
        if blockers:
            text += " behind " + ", ".join(_blocker(b) for b in blockers)
        clauses.append(text)
    container: list[str] = []
    if context.get("exit_code") is not None:
        container.append(f"last exit code {context['exit_code']}")
    if context.get("oom_killed"):
        container.append("OOM-killed")
    if context.get("health_output"):
        container.append(f"health check said: {' '.join(str(context['health_output']).split())}")
    if container:
        clauses.append(", ".join(container))
    return "; ".join(clauses) or None


def describe_reading(
    reading: Reading, severity: Severity, threshold: float | None, rule: RuleView | None
) -> str:
    text = f"{subject(reading)}: {measurement(reading)}"
    if severity != Severity.OK and threshold is not None and rule is not None:
        side = "above" if rule.direction == "above" else "below"
        text += f", {side} {severity.label} {number(threshold, reading.unit)}"
        said = describe_context(reading.context)
        if said:
            text += f" — {said}"
    return text


def describe_event(
    reading: Reading,
    status: str,
    level: Severity,
    threshold: float | None,
    rule: RuleView,
    *,
    gone: bool = False,
    unruled: bool = False,
    quiet: int = 0,
) -> str:
    """`quiet`: the polls without a reading that ended it (an intermittent check)."""
    if status == "firing":
        return describe_reading(reading, level, threshold, rule)
    if quiet:
        polls = f"{quiet} poll{'s' * (quiet != 1)}"
        return (
            f"{subject(reading)}: {reading.check.replace('_', ' ')} not reported for {polls} "
            f"(last {number(reading.value, reading.unit)}); resolved"
        )
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
