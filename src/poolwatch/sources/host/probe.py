"""`statvfs` on threads of the host source's own, so that a mount that does not answer (an NFS
server gone, a FUSE process stopped) costs one thread and one `disk_up` of 0, never the daemon.

- The threads are daemon threads, at most `THREADS`, started when needed. The event loop's
  default executor is never used (asyncpg, redis and httpx resolve names on it), and a thread
  stuck in the kernel cannot hold up interpreter exit, as a `ThreadPoolExecutor`'s would: its
  threads are joined at exit.
- Each probe has `timeout` to answer. A filesystem has at most one probe outstanding: one that did
  not answer is reported on every poll without being asked again, until that probe returns.
"""

from __future__ import annotations

import asyncio
import errno
import queue
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass

import psutil

from poolwatch.config.fields import format_duration

THREADS = 8
"""At most this many probes run at once; as many hung filesystems hold as many threads."""

_GONE = frozenset((errno.ENOENT, errno.ENOTDIR, errno.EACCES, errno.EPERM))
"""Unmounted since the table was read, or hidden from this view: nothing to report."""


@dataclass(frozen=True, slots=True)
class Usage:
    percent: float
    total: int


@dataclass(frozen=True, slots=True)
class Unavailable:
    reason: str


Answer = Usage | Unavailable | None
"""None: nothing to report (gone, hidden, or a filesystem without blocks)."""

_Job = tuple["Future[Usage | None]", Callable[[str], "Usage | None"], str]


def _statvfs(path: str) -> Usage | None:
    usage = psutil.disk_usage(path)
    return Usage(usage.percent, usage.total) if usage.total > 0 else None


class _DaemonThreads:
    """A minimal executor: daemon threads, at most `limit`, a new one only when none is idle
    (the accounting of `ThreadPoolExecutor`). Submitted to from the event loop thread only."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._started = 0

    def submit(self, work: Callable[[str], Usage | None], path: str) -> Future[Usage | None]:
        future: Future[Usage | None] = Future()
        self._jobs.put((future, work, path))
        if not self._idle.acquire(blocking=False) and self._started < self.limit:
            self._started += 1
            name = f"poolwatch-statvfs-{self._started}"
            threading.Thread(target=self._work, name=name, daemon=True).start()
        return future

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            future, work, path = job
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(work(path))
                except BaseException as exc:  # handed to the waiting poll, like any executor
                    future.set_exception(exc)
            del job, future
            self._idle.release()

    def close(self) -> None:
        """Idle threads end now, stuck ones when their call returns."""
        for _ in range(self._started):
            self._jobs.put(None)


@dataclass(slots=True)
class _Probe:
    future: Future[Usage | None]
    since: float


class Prober:
    """Disk usage of many filesystems at once, each within `timeout`, keyed by filesystem."""

    def __init__(self, timeout: float, threads: int = THREADS) -> None:
        self.timeout = timeout
        self._threads = _DaemonThreads(threads)
        self._outstanding: dict[str, _Probe] = {}

    async def measure(self, paths: Mapping[str, str]) -> dict[str, Answer]:
        """`{filesystem: path}` → `{filesystem: answer}`; returns within `timeout`."""
        now = time.monotonic()
        answers: dict[str, Answer] = {}
        waiting: dict[str, asyncio.Future[Usage | None]] = {}
        for key, path in paths.items():
            stuck = self._outstanding.get(key)
            if stuck is not None and not stuck.future.done():
                age = format_duration(max(1.0, round(now - stuck.since)))
                answers[key] = Unavailable(
                    f"statvfs has not answered for {age}; not asked again until it does"
                )
                continue
            future = self._threads.submit(_statvfs, path)
            self._outstanding[key] = _Probe(future, now)
            waiting[key] = asyncio.wrap_future(future)
        for key in [k for k, p in self._outstanding.items() if k not in paths and p.future.done()]:
            del self._outstanding[key]
        if waiting:
            try:
                await asyncio.wait(waiting.values(), timeout=self.timeout)
            finally:
                # a probe still queued is dropped; one that runs stays outstanding. A waiter left
                # pending would be completed later on a loop that may be closed by then
                for key, waiter in waiting.items():
                    self._outstanding[key].future.cancel()
                    waiter.cancel()
        for key in waiting:
            answers[key] = self._answer(key)
        return answers

    def _answer(self, key: str) -> Answer:
        future = self._outstanding[key].future
        if not future.done():
            return Unavailable(f"statvfs did not answer within {format_duration(self.timeout)}")
        del self._outstanding[key]
        if future.cancelled():
            return Unavailable(
                f"not measured: all {self._threads.limit} statvfs threads are waiting on "
                "filesystems that do not answer"
            )
        try:
            return future.result()
        except OSError as exc:
            if exc.errno in _GONE:
                return None
            return Unavailable(f"statvfs failed: {exc.strerror or exc}")

    def close(self) -> None:
        self._threads.close()
