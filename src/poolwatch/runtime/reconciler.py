"""A config reload's plan against what runs: keep, update, replace, add or remove each
collector, and close the ones that go.

Only this part holds the running collectors; it tells the pipeline (what the view shows, what
to resolve) and the scheduler (which loops run) what changed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Protocol

from poolwatch.config.rules import Rules
from poolwatch.runtime.pipeline import owner_of
from poolwatch.sources import Collector, Planned

CLOSE_TIMEOUT = 2.0
"""Seconds a collector's `close` may take before it is abandoned."""


class Follows(Protocol):
    """The pipeline's side of a reload."""

    def serve(self, collectors: Sequence[Collector]) -> None: ...

    async def take_over(self, owner: str, rules: Rules) -> None: ...

    async def forget(self, owner: str, *, resolve: bool) -> None: ...


class Loops(Protocol):
    """The scheduler's side of a reload."""

    running: bool

    def start(self, collector: Collector) -> None: ...

    async def stop(self, owner: str) -> None: ...


class Reconciler:
    """The running collectors, and how a new plan changes them."""

    def __init__(
        self, pipeline: Follows, loops: Loops, collectors: Sequence[Collector] = ()
    ) -> None:
        self._pipeline, self._loops = pipeline, loops
        self._collectors = list(collectors)
        self._identities: dict[str, object] = {}
        pipeline.serve(self._collectors)

    @property
    def collectors(self) -> list[Collector]:
        """The collectors running now (a copy)."""
        return list(self._collectors)

    async def apply(self, plan: Sequence[Planned]) -> dict[str, str]:
        """Reconcile the running collectors with a new plan (a config reload).

        A collector whose connection settings did not change is kept, with its connection, and
        only takes the new rules, interval and timeout, from its next poll on. One whose
        settings changed is replaced; one no longer planned is stopped and its alerts resolved.
        Returns what happened per collector: kept, updated, replaced, added or removed.
        """
        current = {owner_of(c): c for c in self._collectors}
        outcome: dict[str, str] = {}
        collectors: list[Collector] = []
        for item in plan:
            old = current.pop(item.owner, None)
            if old is not None and self._identities.get(item.owner) == item.identity:
                changed = (old.rules, old.interval, old.timeout) != (
                    item.rules,
                    item.interval,
                    item.timeout,
                )
                old.reconfigure(item.settings)
                collectors.append(old)
                outcome[item.owner] = "updated" if changed else "kept"
                await self._pipeline.take_over(item.owner, old.rules)
                continue
            if old is not None:
                # a new password or DSN for the same target: its alerts carry on (same `since`,
                # no resolved/firing pair); the successor's first full poll sweeps what is gone
                await self._retire(old, resolve=False)
            fresh = item.build()
            self._identities[item.owner] = item.identity
            collectors.append(fresh)
            if self._loops.running:
                self._loops.start(fresh)
            outcome[item.owner] = "replaced" if old is not None else "added"
        for owner, gone in current.items():
            await self._retire(gone, resolve=True)
            self._identities.pop(owner, None)
            outcome[owner] = "removed"
        self._collectors = collectors
        self._pipeline.serve(collectors)
        return outcome

    async def close(self) -> None:
        """Close every collector (their loops are stopped)."""
        await asyncio.gather(*(close_collector(c) for c in self._collectors))

    async def _retire(self, collector: Collector, *, resolve: bool) -> None:
        owner = owner_of(collector)
        await self._loops.stop(owner)
        await close_collector(collector)
        await self._pipeline.forget(owner, resolve=resolve)


async def close_collector(collector: Collector) -> None:
    with contextlib.suppress(Exception):
        async with asyncio.timeout(CLOSE_TIMEOUT):
            await collector.close()
