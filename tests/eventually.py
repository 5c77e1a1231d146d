"""The tests' one bounded wait: poll a condition until it holds or a deadline passes, then fail
with what was awaited. Never a fixed sleep followed by an assertion.

`eventually` is for async tests (it yields to the loop between tries); `eventually_sync` is the
same wait for tests that drive a subprocess or a thread from plain code.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any


async def eventually(
    condition: Callable[[], Any], what: str = "condition", within: float = 30, every: float = 0.02
) -> Any:
    """The first truthy value of `condition()`, tried every `every` s for at most `within` s."""
    loop = asyncio.get_running_loop()
    end = loop.time() + within
    while True:
        found = condition()
        if found:
            return found
        if loop.time() > end:
            raise AssertionError(f"not within {within:g}s: {what}")
        await asyncio.sleep(every)


def eventually_sync(
    condition: Callable[[], Any], what: str = "condition", within: float = 30, every: float = 0.1
) -> Any:
    """`eventually` for plain (non-async) test code."""
    end = time.monotonic() + within
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() > end:
            raise AssertionError(f"not within {within:g}s: {what}")
        time.sleep(every)
