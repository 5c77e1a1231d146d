"""The Docker source holds a fixed number of sockets to the engine however many containers come
and go (issue 6: the SDK's pools, one per request URL, kept a socket per container)."""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

import pytest
from tests.docker_source.helpers import Containers, matching

pytestmark = pytest.mark.integration

REPLACEMENTS = 15
ALWAYS_FIRES = ("--label", "poolwatch.memory_percent.warning=0")
"""Every poll with a stats sample fires ContainerMemoryUsageHigh for the container: the event
proves the collector listed, inspected and sampled that container (its own URLs)."""


def descriptors() -> tuple[int, int]:
    """(open descriptors, of which sockets) of this process, which runs the collector."""
    total = sockets = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except FileNotFoundError:  # the listing's own descriptor, closed by now
            continue
        total += 1
        sockets += target.startswith("socket:")
    return total, sockets


async def test_container_replacements_leave_no_sockets_behind(
    containers: Containers, watching: Any
) -> None:
    config = {"include": [containers.prefix + "*"], "concurrency": 2, "stats": "api"}
    containers.run("r00", *ALWAYS_FIRES, command=("sleep", "3600"))
    async with watching(**config) as w:
        await w.event(matching("ContainerMemoryUsageHigh", "firing", containers.prefix + "r00"))
        # every client this collector will ever have, each with its connection: both worker
        # threads (held together by a barrier so neither can take both calls) and the keepalive
        barrier = threading.Barrier(2)
        both = (w.collector.engine.call(lambda api: (barrier.wait(10), api.ping())) for _ in "ab")
        await asyncio.gather(*both, w.collector.events.ping())
        baseline = descriptors()

        previous = containers.prefix + "r00"
        for n in range(1, REPLACEMENTS + 1):
            name = containers.run(f"r{n:02d}", *ALWAYS_FIRES, command=("sleep", "3600"))
            containers.remove(previous)  # removed while polls and the event stream run
            await w.event(matching("ContainerMemoryUsageHigh", "firing", name))
            previous = name
        await w.collector.collect()
        after = descriptors()

    total0, sockets0 = baseline
    total, sockets = after
    assert abs(sockets - sockets0) <= 1, f"sockets {sockets0} -> {sockets} ({baseline=} {after=})"
    assert abs(total - total0) <= 1, f"descriptors {total0} -> {total}"
