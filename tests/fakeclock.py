"""A clock the test moves: `monotonic()`/`wall()` read it, `sleep()` waits until `advance` gets
there. Handed to the parts that take their clock and sleep injected (the scheduler, the
runner), it makes "three polls in 0.25 s" exact and instant, where real time made it a count
after a fixed sleep.

Only the injected sleep is fake: a timeout under `asyncio.timeout` (a collector's) still runs
on the loop's real clock.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools

from tests.eventually import eventually

_EPSILON = 1e-9
"""A sleeper due within this of the target is due: sums of 0.1 s intervals drift by ulps."""
_SETTLE_TURNS = 50
"""Loop turns given to the woken tasks to run up to their next sleep (no real I/O here)."""


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + max(0.0, seconds), next(self._order), future))
        await future

    def sleeping(self) -> int:
        """How many sleeps are parked on this clock now."""
        return sum(1 for _, _, future in self._sleepers if not future.done())

    async def parked(self, count: int = 1, within: float = 10) -> None:
        """Wait (a bounded real wait: the task may be in real I/O, a thread's sqlite) until
        `count` sleeps are parked: the tasks under test have nothing left to do until time
        moves, so what they did so far can be asserted exactly."""
        await _settle()  # what was just woken or set first leaves its old sleep
        await eventually(
            lambda: self.sleeping() >= count, f"{count} sleeper(s) parked", within, every=0.005
        )

    async def advance(self, seconds: float) -> None:
        """Move time on by `seconds`, waking each sleeper at its time, in order, and letting
        it run to its next sleep before time moves again."""
        target = self.now + seconds
        await _settle()
        while self._sleepers and self._sleepers[0][0] <= target + _EPSILON:
            at, _, future = heapq.heappop(self._sleepers)
            self.now = max(self.now, at)
            if not future.done():
                future.set_result(None)
            await _settle()
        self.now = max(self.now, target)
        await _settle()


async def _settle() -> None:
    for _ in range(_SETTLE_TURNS):
        await asyncio.sleep(0)
