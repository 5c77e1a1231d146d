"""Redis INFO → readings, declared: a table of small specs instead of a chain of ifs.

Pure (no I/O): each spec turns this poll's INFO (and the previous poll's, for counters) into one
value and the limit it is measured against, or None when the server gives nothing to judge.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from poolwatch.core.model import UP_CHECK

Info = Mapping[str, str]


def parse_info(text: str) -> dict[str, str]:
    """`INFO` text → field: value (section headers, blanks and keyspace lines kept as text)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition(":")
        if sep:
            fields[name.strip()] = value.strip()
    return fields


def number(info: Info, name: str) -> float | None:
    """A numeric INFO field; None when absent or not a number (managed servers hide some)."""
    try:
        return float(info[name])
    except (KeyError, ValueError):
        return None


# --- INFO → readings, declared ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sample:
    """One poll's INFO and the client limit that applied to it."""

    info: Info
    maxclients: float | None


def _counter_delta(name: str, now: Sample, before: Sample | None) -> float | None:
    """Growth of a counter since the previous poll; a restart (new run_id) or RESETSTAT restarts
    it at 0, so the value itself is then the growth. None on the first poll."""
    current = number(now.info, name)
    if before is None or current is None:
        return None
    previous = number(before.info, name)
    if previous is None:
        return None
    restarted = now.info.get("run_id") != before.info.get("run_id")
    return current if restarted or current < previous else current - previous


@dataclass(frozen=True, slots=True)
class Gauge:
    """An INFO field as it is; `of_maxclients` measures it against the client limit."""

    check: str
    field: str
    unit: str
    of_maxclients: bool = False

    def measure(self, now: Sample, before: Sample | None) -> tuple[float, float | None] | None:
        value = number(now.info, self.field)
        if value is None:
            return None
        return value, now.maxclients if self.of_maxclients else None


@dataclass(frozen=True, slots=True)
class Clients:
    """The connections Redis compares with `maxclients`: `connected_clients` leaves out
    replicas (`connected_slaves`) and cluster bus links (`cluster_connections`), which count
    against the limit all the same (9/10 reported while Redis refused)."""

    check: str
    unit: str = "clients"

    def measure(self, now: Sample, before: Sample | None) -> tuple[float, float | None] | None:
        clients = number(now.info, "connected_clients")
        if clients is None:
            return None
        others = (
            number(now.info, name) or 0.0 for name in ("connected_slaves", "cluster_connections")
        )
        return clients + sum(others), now.maxclients


@dataclass(frozen=True, slots=True)
class Delta:
    """How much a counter grew during the poll interval."""

    check: str
    field: str
    unit: str

    def measure(self, now: Sample, before: Sample | None) -> tuple[float, float | None] | None:
        delta = _counter_delta(self.field, now, before)
        return None if delta is None else (delta, None)


@dataclass(frozen=True, slots=True)
class Share:
    """`part` as a percentage of `whole`; absent when `whole` is 0 (no maxmemory set)."""

    check: str
    part: str
    whole: str
    unit: str = "percent"

    def measure(self, now: Sample, before: Sample | None) -> tuple[float, float | None] | None:
        part, whole = number(now.info, self.part), number(now.info, self.whole)
        if part is None or not whole:
            return None
        return 100.0 * part / whole, 100.0


@dataclass(frozen=True, slots=True)
class DeltaShare:
    """Of the growth of `part` and `other` this interval, the share of `part`, in percent;
    absent when neither grew (no traffic, nothing to judge)."""

    check: str
    part: str
    other: str
    unit: str = "percent"

    def measure(self, now: Sample, before: Sample | None) -> tuple[float, float | None] | None:
        part = _counter_delta(self.part, now, before)
        other = _counter_delta(self.other, now, before)
        if part is None or other is None or part + other <= 0:
            return None
        return 100.0 * part / (part + other), 100.0


Spec = Gauge | Clients | Delta | Share | DeltaShare

EXHAUSTED_CHECK = "pool_exhausted"
"""1 while Redis refuses poolwatch's own (re)connect for `maxclients`; 0 once connected."""

READINGS: tuple[Spec, ...] = (
    Clients("connected_clients"),
    Gauge("blocked_clients", "blocked_clients", "clients"),
    Delta("rejected_connections", "rejected_connections", "connections"),
    Share("memory_percent", "used_memory", "maxmemory"),
    DeltaShare("keyspace_hit_rate_percent", "keyspace_hits", "keyspace_misses"),
    Delta("evicted_keys", "evicted_keys", "keys"),
)
LOGIN_UNITS = {"login_ok": "bool", "login_seconds": "seconds"}
"""The login probe's readings (poolwatch.sources.login), beside INFO's."""
CHECKS = (UP_CHECK, EXHAUSTED_CHECK, *(spec.check for spec in READINGS), *LOGIN_UNITS)
UNITS = {
    UP_CHECK: "bool",
    EXHAUSTED_CHECK: "bool",
    **{spec.check: spec.unit for spec in READINGS},
    **LOGIN_UNITS,
}


def resolve_maxclients(
    info: Info, from_config_get: float | None, configured: int | None
) -> float | None:
    """The client limit: INFO (Redis ≥ 6.2), else CONFIG GET, else what the operator configured."""
    for candidate in (number(info, "maxclients"), from_config_get, configured):
        if candidate:
            return float(candidate)
    return None


BOUNDED_PERCENT = frozenset({"memory_percent", "keyspace_hit_rate_percent"})
