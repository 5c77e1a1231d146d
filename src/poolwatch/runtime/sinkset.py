"""The sinks' lifecycle: every sink opened before the first poll, all of them closed at once
under one deadline on stop.

Closing concurrently matters because each durable sink spends its grace delivering what is
queued: one after another, the first would eat the deadline of the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator, Sequence

from poolwatch.core.reasons import one_line
from poolwatch.logs import get_logger
from poolwatch.sinks import Sink

_SLACK = 0.5
"""Seconds past its grace a sink's `close` may take before it is abandoned."""
_LEAST_GRACE = 0.1


class SinkSet:
    """The configured sinks, in order; iterating yields those the pipeline may send to."""

    def __init__(
        self, sinks: Sequence[Sink], *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._sinks = list(sinks)
        self._monotonic = monotonic
        self._log = get_logger()

    def __iter__(self) -> Iterator[Sink]:
        return iter(list(self._sinks))

    def __len__(self) -> int:
        return len(self._sinks)

    async def start(self) -> None:
        """Open every sink; if one fails, close those opened, drop them all (there is nothing
        left to close or send to) and re-raise."""
        for index, sink in enumerate(self._sinks):
            try:
                await sink.start()
            except Exception:
                opened, self._sinks = self._sinks[:index], []
                for each in opened:
                    with contextlib.suppress(Exception):
                        await each.close(0)
                raise

    async def close(self, deadline: float) -> None:
        """Close every sink concurrently, each with what is left until `deadline` (a
        `monotonic` time) to deliver; one that overstays is abandoned, and said."""
        remaining = max(_LEAST_GRACE, deadline - self._monotonic())
        await asyncio.gather(*(self._close(sink, remaining) for sink in self._sinks))

    async def _close(self, sink: Sink, grace: float) -> None:
        try:
            async with asyncio.timeout(grace + _SLACK):
                await sink.close(grace)
        except Exception as exc:
            self._log.error(
                "sink_close_failed", sink=sink.name, reason=one_line(exc, timeout=grace, named=True)
            )
