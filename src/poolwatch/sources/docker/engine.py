"""The Docker engine's API from asyncio: blocking SDK calls on a bounded pool of worker threads.

Why threads, and why one client per thread: the docker SDK is synchronous, and its client (a
`requests.Session` over a connection pool) is not documented as thread-safe. Each worker thread
of a dedicated pool therefore builds its own `APIClient` on first use and only ever uses that one;
nothing is shared between threads, so nothing needs a lock, and each client holds one connection
(`one_pool_per_engine`: the SDK alone would keep a socket per URL, so per container).
The pool size is the concurrency bound (`docker.concurrency`); a dedicated pool (not asyncio's
default executor) keeps a slow engine from starving the other sources' threads. Every call runs
under the client's `timeout`.

The event stream is long-lived, so it gets its own daemon thread and client (`EventStream`): its
items reach asyncio through a bounded queue, and an abandoned or stuck thread cannot hold up exit.

Bounded: the SDK (requests) reads an answer's body whole, however long, and its event stream
buffers an HTTP chunk or an unfinished JSON object whole. A hook on every client reads each
answer under `ANSWER_MAX_BYTES` instead (refused at once when its `Content-Length` says more),
and the event stream is read in pieces, one event at most `EVENT_MAX_BYTES` (a longer one is
skipped up to its newline, and said so).

Read-only: list, inspect, stats, events, version, info, ping.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import docker
import docker.constants

from poolwatch.sources import SourceError

T = TypeVar("T")

MIB = 1024 * 1024
ANSWER_MAX_BYTES = 16 * MIB
"""At most this much of one API answer is read: `/containers/json` is about 2.5 KB a container
(16 MiB: over 6,000 containers), an inspect about 10 KB, stats about 5 KB."""
EVENT_MAX_BYTES = 1 * MIB
"""At most this much of one event is kept (a real one is well under 2 KB, its labels included)."""
READ_PIECE = 64 * 1024


class AnswerTooLargeError(SourceError):
    """An API answer longer than `ANSWER_MAX_BYTES`: refused, the connection closed."""


def _path(response: Any) -> str:
    request = getattr(response, "request", None)
    path = str(getattr(request, "path_url", "") or "").split("?", 1)[0]
    return f"{getattr(request, 'method', 'GET')} {path}"


def read_capped(response: Any, limit: int = ANSWER_MAX_BYTES) -> None:
    """Read `response`'s body, at most `limit` bytes, into the place requests keeps it, so that
    the SDK's `.json()`/`.text` find it read; over `limit` the response is closed and
    `AnswerTooLargeError` raised, having read at most `limit` (nothing when it says so first)."""
    cap = f"poolwatch's cap of {limit // MIB} MiB for one answer"
    declared = str(response.headers.get("Content-Length") or "").strip()
    if declared.isdigit() and int(declared) > limit:
        response.close()
        raise AnswerTooLargeError(
            f"the engine's answer to {_path(response)} is larger than {cap} "
            f"(Content-Length {declared}): not read"
        )
    pieces: list[bytes] = []
    size = 0
    for piece in response.iter_content(READ_PIECE):
        size += len(piece)
        if size > limit:
            response.close()
            raise AnswerTooLargeError(
                f"the engine's answer to {_path(response)} is larger than {cap} "
                f"(more than {limit} bytes arrived): not read further"
            )
        pieces.append(piece)
    response._content = b"".join(pieces)  # what requests' `.content` returns from now on


def cap_answers(response: Any, *_: Any, stream: bool = False, **__: Any) -> Any:
    """requests' response hook on every client: each answer read under the cap before the SDK
    sees it. A streamed answer (the event stream) is read by `json_lines`, unless it is an
    error, whose body the SDK would read whole."""
    if not stream or response.status_code >= 400:
        read_capped(response)
    return response


@dataclass(frozen=True, slots=True)
class EventSkipped:
    """An item of the event stream that was not an event: too long, or not JSON."""

    reason: str


def json_lines(
    pieces: Iterable[bytes], limit: int = EVENT_MAX_BYTES
) -> Iterator[dict[str, Any] | EventSkipped]:
    """The engine's event stream (one JSON object per line) from pieces of any size, holding at
    most `limit` bytes of one line: a longer one is dropped up to its newline."""
    pending = bytearray()
    skipping = False
    for piece in pieces:
        start = 0
        while start < len(piece):
            end = piece.find(b"\n", start)
            stop = len(piece) if end < 0 else end
            if not skipping:
                pending += piece[start:stop]
                if len(pending) > limit:
                    pending.clear()
                    skipping = True
                    yield EventSkipped(
                        f"an event longer than {limit // MIB} MiB (poolwatch's cap): skipped"
                    )
            if end < 0:
                break
            start = end + 1
            if not skipping and pending.strip():
                try:
                    found = json.loads(pending)
                except ValueError:
                    yield EventSkipped(f"not JSON: {bytes(pending[:80])!r}")
                else:
                    if isinstance(found, dict):
                        yield found
            pending.clear()
            skipping = False


ONE_SHOT_API = (1, 41)
"""`stats?one-shot=true` (no priming wait for `precpu_stats`) needs Engine API 1.41."""
ONE_SHOT_SDK = (6, 1)
"""... and docker SDK 6.1 to send it."""


def version_tuple(text: str) -> tuple[int, ...]:
    parts: list[int] = []
    for piece in text.split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def make_client(environment: Mapping[str, str] | None, timeout: float, version: str) -> Any:
    """`docker.from_env`: DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH or the local socket.

    The version is given (no request at construction): the SDK's own negotiation, when the
    engine is down, raises from the constructor and leaks the half-built client's socket.
    """
    client = docker.from_env(
        version=version,
        environment=dict(environment) if environment is not None else None,
        timeout=max(1, round(timeout)),
        max_pool_size=1,
    )
    api = client.api
    one_pool_per_engine(api.get_adapter(api.base_url))
    api.hooks["response"].append(cap_answers)  # the APIClient is a requests.Session
    if str(api.base_url).startswith(UNIX_SOCKET_URL):
        # requests reads the environment on every request (proxies, NO_PROXY, ~/.netrc, CA
        # bundles): none of it applies to a unix socket, and it was 40 % of each call's CPU
        api.trust_env = False
    return api


UNIX_SOCKET_URL = "http+docker://"
"""The SDK's base URL for a unix-socket engine (`unix://`, the default socket)."""


def one_pool_per_engine(adapter: Any) -> None:
    """Key the SDK's connection pools by engine, not by request URL.

    The SDK's unix-socket (and SSH, npipe) adapters keep one pool per full request URL, up to 25
    per client, each holding its own idle socket: `/containers/<id>/json` and `.../stats` of
    every new container opened a socket that stayed until 25 newer URLs pushed it out. With 8
    worker threads that was up to 200 sockets to dockerd, growing with container churn (issue 6).
    The pool's URL is never used to connect (the adapter knows its socket), so one key per engine
    gives the one reused connection per client that `max_pool_size=1` intends. requests' own
    adapter (TCP, TLS) already pools by host and has no `pools`: left alone.
    """
    if not hasattr(adapter, "pools"):
        return
    by_url = adapter.get_connection

    def get_connection(url: str, proxies: Mapping[str, str] | None = None) -> Any:
        parts = urlsplit(url)
        return by_url(f"{parts.scheme}://{parts.netloc}", proxies)

    adapter.get_connection = get_connection


def negotiate(environment: Mapping[str, str] | None, timeout: float) -> str:
    """The API version to speak: the engine's, capped by what this SDK knows."""
    client = make_client(environment, timeout, docker.constants.MINIMUM_DOCKER_API_VERSION)
    try:
        server = str(client.version(api_version=False)["ApiVersion"])
    finally:
        client.close()
    newest = docker.constants.DEFAULT_DOCKER_API_VERSION
    return server if version_tuple(server) <= version_tuple(newest) else newest


class Engine:
    """Blocking API calls, `workers` at a time, each thread with its own client."""

    def __init__(self, environment: Mapping[str, str] | None, timeout: float, workers: int) -> None:
        self.environment = environment
        self.timeout = timeout
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="poolwatch-docker")
        self._local = threading.local()
        self._clients: list[Any] = []
        self._lock = threading.Lock()
        self._negotiating = threading.Lock()
        self.api_version: str | None = None
        self._generation = 0
        self._busy: set[int] = set()
        """Clients in a call right now (by id): a retime closes only the others."""

    def retime(self, timeout: float) -> None:
        """A new timeout for every call from now on: the clients not in a call now are closed
        at once (their sockets with them); one in a call is replaced when its thread is next
        used. Each thread makes a new client with the new timeout."""
        with self._lock:
            self.timeout = timeout
            self._generation += 1
            idle = [c for c in self._clients if id(c) not in self._busy]
            self._clients = [c for c in self._clients if id(c) in self._busy]
        for client in idle:
            with contextlib.suppress(Exception):
                client.close()

    def _client(self) -> Any:
        client = getattr(self._local, "client", None)
        if client is not None and getattr(self._local, "generation", 0) != self._generation:
            with self._lock:  # retimed: this thread's old client goes, with its sockets
                if client in self._clients:
                    self._clients.remove(client)
            with contextlib.suppress(Exception):
                client.close()
            client = None
        if client is None:
            with self._negotiating:  # once, not once per worker thread starting together
                version = self.api_version
                if version is None:
                    version = self.api_version = negotiate(self.environment, self.timeout)
            client = make_client(self.environment, self.timeout, version)
            self._local.client, self._local.generation = client, self._generation
            with self._lock:
                self._clients.append(client)
        return client

    async def call(self, fn: Callable[[Any], T]) -> T:
        """`fn(api_client)` on a worker thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._with_client, fn)

    def _with_client(self, fn: Callable[[Any], T]) -> T:
        client = self._client()
        with self._lock:
            self._busy.add(id(client))
        try:
            return fn(client)
        finally:
            with self._lock:
                self._busy.discard(id(client))

    async def run(self, fn: Callable[[], T]) -> T:
        """Other blocking work of this source (cgroup file reads) on the same bounded pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, fn)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            with contextlib.suppress(Exception):
                client.close()


@dataclass(frozen=True, slots=True)
class StreamEnded:
    """The stream stopped: `error` says why (None when the engine closed it cleanly)."""

    error: BaseException | None


CONNECTED = object()
"""Put first on the queue once the engine accepted the subscription."""


class EventStream:
    """One subscription to `GET /events` (containers only), read by a daemon thread.

    `open()` starts a new generation; items of an older generation are dropped, so a stuck
    thread that is abandoned (`abandon()`) can never deliver late. The queue is bounded: when
    asyncio falls that far behind, events are dropped and counted, and the next poll's inspect
    cross-check recovers the counts.
    """

    ACTIONS = ("start", "die", "oom", "health_status", "destroy", "kill", "stop")

    def __init__(
        self, environment: Mapping[str, str] | None, timeout: float, queue_size: int = 1000
    ) -> None:
        self.environment = environment
        self.timeout = timeout
        self.dropped = 0
        self.skipped = 0
        """Items of the stream that were not events (too long, not JSON): each logged."""
        self._queue: asyncio.Queue[tuple[int, object]] = asyncio.Queue(maxsize=queue_size)
        self._generation = 0
        self._stream: Any = None
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pinger = ThreadPoolExecutor(max_workers=1, thread_name_prefix="poolwatch-docker-ping")
        self._ping_client: Any = None
        """Built and used only on the `_pinger` thread."""

    def open(self, since: str | None) -> None:
        self.abandon()
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue(maxsize=self._queue.maxsize)
        generation = self._generation
        thread = threading.Thread(
            target=self._read,
            args=(generation, since, self._loop, self._queue),
            name=f"poolwatch-docker-events-{generation}",
            daemon=True,
        )
        thread.start()

    async def ping(self) -> None:
        """`GET /_ping` on this stream's own thread and client, so that a pool busy with slow
        stats calls cannot make a healthy engine look hung. Raises when the engine fails."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._pinger, self._ping)

    def _ping(self) -> None:
        if self._ping_client is None:
            version = negotiate(self.environment, self.timeout)
            self._ping_client = make_client(self.environment, self.timeout, version)
        self._ping_client.ping()

    def abandon(self, error: BaseException | None = None) -> None:
        """Stop the current subscription: its thread's items are ignored from now on; its
        reader sees one StreamEnded(error)."""
        with self._lock:
            self._generation += 1
            stream, self._stream = self._stream, None
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.close()  # unblocks the reading thread
        with contextlib.suppress(asyncio.QueueFull, RuntimeError):
            self._queue.put_nowait((self._generation - 1, StreamEnded(error)))

    def close(self) -> None:
        """For good: the subscription and the ping thread (a ping stuck on a hung engine is
        left to its client's timeout)."""
        self.abandon()
        self._pinger.shutdown(wait=False, cancel_futures=True)
        if self._ping_client is not None:
            with contextlib.suppress(Exception):
                self._ping_client.close()

    async def items(self) -> AsyncGenerator[object, None]:
        """CONNECTED, then event dicts (and EventSkipped), then one StreamEnded; nothing from
        older generations."""
        generation = self._generation
        while True:
            got_generation, item = await self._queue.get()
            if got_generation != generation:
                continue
            yield item
            if isinstance(item, StreamEnded):
                return

    def _read(
        self,
        generation: int,
        since: str | None,
        loop: asyncio.AbstractEventLoop,
        queue: asyncio.Queue[tuple[int, object]],
    ) -> None:
        def put(item: object) -> bool:
            if generation != self._generation:
                return False

            def deliver() -> None:
                try:
                    queue.put_nowait((generation, item))
                except asyncio.QueueFull:
                    self.dropped += 1

            try:
                loop.call_soon_threadsafe(deliver)
            except RuntimeError:  # the loop is closed: poolwatch is exiting
                return False
            return True

        client = None
        try:
            version = negotiate(self.environment, self.timeout)
            client = make_client(self.environment, self.timeout, version)
            stream = client.events(
                since=since, filters={"type": ["container"], "event": list(self.ACTIONS)}
            )
            with self._lock:
                if generation != self._generation:
                    stream.close()
                    return
                self._stream = stream
            # read here, in bounded pieces, not by the SDK's decoder (it holds a chunk whole)
            response = stream._response
            response.raise_for_status()  # an error's body was read under the cap by the hook
            if not put(CONNECTED):
                return
            for item in json_lines(response.iter_content(READ_PIECE)):
                if isinstance(item, EventSkipped):
                    self.skipped += 1
                if not put(item):
                    return
            put(StreamEnded(None))
        except Exception as exc:
            put(StreamEnded(exc))
        finally:
            if client is not None:
                with contextlib.suppress(Exception):
                    client.close()
