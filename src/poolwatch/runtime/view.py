"""What the parts that report on the runner may read of it: the metrics endpoint, the health
endpoints and the heartbeat file.

They take a `RuntimeView`, not the runtime's parts, so that they cannot start, stop or
reconfigure anything. The pipeline is the view (`Runner.view`): each call reads its state as it
is then, so a reload that changes the collectors shows at once, and hands out copies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from poolwatch.core.evaluate import Firing
from poolwatch.core.limits import LimitNote
from poolwatch.core.model import Reading


@dataclass(frozen=True, slots=True)
class Owner:
    """One running collector as the reports see it: its name and its pace."""

    name: str
    """`source:instance`, the key of every per-collector statistic."""
    interval: float
    timeout: float


@dataclass
class Stats:
    """What the runner has done, for logs now and for the metrics endpoint later."""

    polls: dict[str, int] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    overruns: dict[str, int] = field(default_factory=dict)
    last_poll: dict[str, float] = field(default_factory=dict)
    """Wall-clock time of each collector's last successful poll."""
    last_turn: dict[str, float] = field(default_factory=dict)
    """Wall time each collector's loop last finished a poll, evaluation and delivery (liveness);
    a failed poll counts: the loop still turns."""
    durations: dict[str, float] = field(default_factory=dict)
    """Seconds the last poll of each collector took, failed or not."""
    events: dict[tuple[str, str], int] = field(default_factory=dict)
    """Events handed to the sinks, by (status, severity)."""
    held: dict[str, int] = field(default_factory=dict)
    """Events held from the notifying sinks for their cause (a parent down), by status."""
    lost: dict[tuple[str, str], int] = field(default_factory=dict)
    """Events a sink could not take (not stored, so never to be delivered), by (sink, reason):
    the reason is the failure's type (`QueueError`, `TimeoutError`, ...)."""


class RuntimeView(Protocol):
    """Read-only access to a running poolwatch; callers must not change what they get."""

    def owners(self) -> Sequence[Owner]:
        """The collectors running now."""
        ...

    def latest_readings(self) -> Sequence[Reading]:
        """The last value of every reading of every collector (a copy: safe to iterate)."""
        ...

    def stats(self) -> Stats:
        """The runner's counters, as they are now (a copy: the live ones go on counting)."""
        ...

    def started(self) -> float | None:
        """Wall time the runner began; None until then."""
        ...

    def firing(self) -> Sequence[Firing]:
        """Every alert at warning or critical."""
        ...

    def limit_notes(self) -> Sequence[LimitNote]:
        """The settings that cannot fire against the limits the servers enforce now."""
        ...
