"""The tests' one bounded wait: poll a condition until it holds or a deadline passes, then fail
with what was awaited. Never a fixed sleep followed by an assertion.

`eventually` is for async tests (it yields to the loop between tries); `eventually_sync` is the
same wait for tests that drive a subprocess or a thread from plain code.

A condition returns its value (the first truthy one is returned) or raises to end the wait at
once (a process that exited will never get there). For `eventually` it may also be a coroutine
function (a query, a poll): it is awaited each try. `what` names the wait in the failure; a
callable is asked only then, so it can say what was last seen.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any

What = str | Callable[[], str]


async def eventually(
    condition: Callable[[], Any], what: What = "condition", within: float = 30, every: float = 0.02
) -> Any:
    """The first truthy value of `condition()` (awaited if it is awaitable), tried every `every`
    s for at most `within` s."""
    loop = asyncio.get_running_loop()
    end = loop.time() + within
    while True:
        found = condition()
        if inspect.isawaitable(found):
            found = await found
        if found:
            return found
        if loop.time() > end:
            raise AssertionError(f"not within {within:g}s: {_said(what)}")
        await asyncio.sleep(every)


def eventually_sync(
    condition: Callable[[], Any], what: What = "condition", within: float = 30, every: float = 0.1
) -> Any:
    """`eventually` for plain (non-async) test code."""
    end = time.monotonic() + within
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() > end:
            raise AssertionError(f"not within {within:g}s: {_said(what)}")
        time.sleep(every)


def _said(what: What) -> str:
    return what if isinstance(what, str) else what()
