"""Redis INFO → readings, declared: a table of small specs instead of a chain of ifs.

Pure (no I/O): each spec turns this poll's INFO (and the previous poll's, for counters) into one
value and the limit it is measured against, or None when the server gives nothing to judge. The
hit rate alone needs more than two polls (`HitRate`: enough lookups, over a window).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from poolwatch.core.limits import effective_limit
from poolwatch.core.model import UP_CHECK
from poolwatch.sources.redis.readings import EXHAUSTED_CHECK, HIT_RATE_CHECK, LOGIN_UNITS

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


@dataclass(slots=True)
class HitRate:
    """The keyspace hit rate, judged only over enough lookups: the most recent polls that hold
    at least `min_lookups` hits + misses together, looking back at most `window` seconds.

    A poll's own share would make one miss of an idle cache a hit rate of 0 %, and the next
    quiet poll would drop it again: with the window, an idle cache never has a hit rate, a slow
    one is judged over as many polls as it takes, and a busy one over its last poll alone.
    Time comes from the caller (`at`), so this stays pure.
    """

    min_lookups: int
    window: float
    _polls: deque[tuple[float, float, float]] = field(default_factory=deque)
    """(when, hits, misses) of the recent polls, oldest first."""

    def observe(
        self, now: Sample, before: Sample | None, at: float
    ) -> tuple[float, float, int] | None:
        """This poll's lookups added; (hit %, lookups, polls) over the window, or None when
        it holds fewer than `min_lookups`."""
        hits = _counter_delta("keyspace_hits", now, before)
        misses = _counter_delta("keyspace_misses", now, before)
        if hits is not None and misses is not None and hits + misses > 0:
            self._polls.append((at, hits, misses))
        while self._polls and self._polls[0][0] <= at - self.window:
            self._polls.popleft()
        while len(self._polls) > 1 and self._lookups(skip=1) >= self.min_lookups:
            self._polls.popleft()  # the recent polls alone are enough: judge those
        lookups = self._lookups()
        if lookups < max(1, self.min_lookups):
            return None
        hit = sum(entry[1] for entry in self._polls)
        return 100.0 * hit / lookups, lookups, len(self._polls)

    def _lookups(self, skip: int = 0) -> float:
        return sum(h + m for _, h, m in list(self._polls)[skip:])


Spec = Gauge | Clients | Delta | Share

READINGS: tuple[Spec, ...] = (
    Clients("connected_clients"),
    Gauge("blocked_clients", "blocked_clients", "clients"),
    Delta("rejected_connections", "rejected_connections", "connections"),
    Share("memory_percent", "used_memory", "maxmemory"),
    Delta("evicted_keys", "evicted_keys", "keys"),
)
UNITS = {
    UP_CHECK: "bool",
    EXHAUSTED_CHECK: "bool",
    **{spec.check: spec.unit for spec in READINGS},
    HIT_RATE_CHECK: "percent",
    **LOGIN_UNITS,
}


def server_maxclients(info: Info, from_config_get: float | None) -> float | None:
    """The client limit the server enforces: INFO (Redis 6.2 and later), else CONFIG GET."""
    for candidate in (number(info, "maxclients"), from_config_get):
        if candidate:
            return float(candidate)
    return None


def resolve_maxclients(
    info: Info, from_config_get: float | None, configured: int | None
) -> float | None:
    """The limit readings are judged against: the server's own, or a smaller configured one;
    the configured one alone when the server says nothing (managed Redis, CONFIG disabled)."""
    server = server_maxclients(info, from_config_get)
    return effective_limit(None if configured is None else float(configured), server)
