"""The optional HTTP listener: `/metrics`, `/healthz` (liveness), `/readyz` (readiness).

An asyncio server on the daemon's own loop, with h11 (already installed as httpx's HTTP/1.1
parser) doing the protocol, so there is no second thread touching the runner's state. A scrape
only formats values already held.

Bounded, because anyone who can reach the port can open connections (a slowloris sends one byte
a second on each of thousands): poolwatch accepts for itself, not through asyncio's server, so
that it can stop accepting.
- At most `max_clients` connections are served at once; more wait in the kernel's backlog
  (which costs poolwatch no descriptor) until one ends.
- Each request must arrive whole within `READ_TIMEOUT` and its answer be taken within
  `WRITE_TIMEOUT`; then the connection is cut.
- Descriptors are kept for the daemon's own work (database connections, the state files, the
  Docker engine): no connection is accepted while fewer than `reserve` are left of the process's
  limit (`RLIMIT_NOFILE`).
- A failed `accept()` (out of descriptors, aborted) is a JSON log line, once until it works
  again, never an asyncio traceback on stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import os
import resource
import socket
from collections.abc import Callable

import h11
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from poolwatch.core.reasons import one_line
from poolwatch.logs import get_logger
from poolwatch.runtime.health import Verdict

READ_TIMEOUT = 5.0
"""A whole request, from the connection's start: a client that trickles it is cut."""
WRITE_TIMEOUT = 5.0
"""The whole answer taken by the client."""
MAX_REQUEST = 64 * 1024
MAX_CLIENTS = 64
"""Connections served at once (a Prometheus scrapes with one)."""
BACKLOG = 128
RESERVE_SHARE, RESERVE_MIN, RESERVE_MAX = 4, 16, 256
"""Descriptors kept from clients: a quarter of the limit, at least 16 and at most 256."""
RETRY = 0.2
"""Seconds between looks at the descriptors while too few are left, or after accept() failed."""


def parse_listen(address: str) -> tuple[str, int]:
    """`host:port`, `:port` (all interfaces) or `[::1]:port`."""
    host, _, port = address.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 - ":port" asks for all


def descriptor_limit() -> int:
    """The process's soft limit on open descriptors."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def open_descriptors() -> int | None:
    """How many descriptors the process holds (None where /proc cannot say)."""
    try:
        return len(os.listdir("/proc/self/fd")) - 1  # the listing's own
    except OSError:
        return None


def reserve_for(limit: int) -> int:
    return max(RESERVE_MIN, min(RESERVE_MAX, limit // RESERVE_SHARE))


class Listener:
    def __init__(
        self,
        address: str,
        registry: CollectorRegistry,
        liveness: Callable[[], Verdict],
        readiness: Callable[[], Verdict],
        *,
        max_clients: int = MAX_CLIENTS,
        read_timeout: float = READ_TIMEOUT,
        reserve: int | None = None,
        limit: Callable[[], int] = descriptor_limit,
        in_use: Callable[[], int | None] = open_descriptors,
    ) -> None:
        self.host, self.port = parse_listen(address)
        self._registry = registry
        self._routes: dict[str, Callable[[], tuple[int, str, bytes]]] = {
            "/metrics": self._metrics,
            "/healthz": lambda: self._verdict(liveness()),
            "/readyz": lambda: self._verdict(readiness()),
        }
        self.max_clients = max_clients
        self.read_timeout = read_timeout
        self._reserve = reserve
        self._limit = limit
        self._in_use = in_use
        self._slots = asyncio.Semaphore(max_clients)
        self._sockets: list[socket.socket] = []
        self._accepting: list[asyncio.Task[None]] = []
        self._clients: set[asyncio.Task[None]] = set()
        self._held_back = False
        self._log = get_logger()

    @property
    def clients(self) -> int:
        """Connections being served now."""
        return len(self._clients)

    async def start(self) -> None:
        """Bind every address `host` resolves to (as asyncio's own server does) and accept."""
        loop = asyncio.get_running_loop()
        found = await loop.getaddrinfo(
            self.host, self.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        try:
            for family, kind, proto, _, address in dict.fromkeys(found):
                sock = socket.socket(family, kind, proto)
                self._sockets.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind(address)
                sock.listen(BACKLOG)
                sock.setblocking(False)
        except OSError:
            self._close_sockets()
            raise
        if self._sockets:
            self.port = int(self._sockets[0].getsockname()[1])
        self._accepting = [
            asyncio.create_task(self._accept(sock), name="listener-accept")
            for sock in self._sockets
        ]

    async def close(self) -> None:
        for task in self._accepting:
            task.cancel()
        await asyncio.gather(*self._accepting, return_exceptions=True)
        self._close_sockets()
        clients = list(self._clients)
        for task in clients:
            task.cancel()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                await asyncio.gather(*clients, return_exceptions=True)

    def _close_sockets(self) -> None:
        for sock in self._sockets:
            sock.close()
        self._sockets = []

    # --- accepting, within bounds ---

    async def _accept(self, listening: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        failing = False
        while True:
            await self._slots.acquire()
            try:
                await self._spare_descriptors()
                conn, _ = await loop.sock_accept(listening)
            except OSError as exc:  # EMFILE, ENFILE, ENOBUFS, ECONNABORTED: try again soon
                self._slots.release()
                if not failing:
                    self._log.warning("listener_accept_failed", reason=one_line(exc, named=True))
                failing = True
                await asyncio.sleep(RETRY)
                continue
            except BaseException:
                self._slots.release()
                raise
            if failing:
                self._log.info("listener_accepting")
            failing = False
            task = asyncio.create_task(self._client(conn), name="listener-client")
            self._clients.add(task)
            task.add_done_callback(self._clients.discard)

    async def _spare_descriptors(self) -> None:
        """Wait while fewer than the reserve of descriptors are left for poolwatch's own work."""
        while True:
            limit = self._limit()
            reserve = self._reserve if self._reserve is not None else reserve_for(limit)
            used = self._in_use()
            if used is None or limit - used > reserve:
                if self._held_back:
                    self._log.info("listener_accepting", descriptors_in_use=used, limit=limit)
                self._held_back = False
                return
            if not self._held_back:
                self._log.warning(
                    "listener_held_back",
                    descriptors_in_use=used,
                    limit=limit,
                    reserve=reserve,
                    effect="no new connection until descriptors are free: the rest is kept "
                    "for poolwatch's own work",
                )
            self._held_back = True
            await asyncio.sleep(RETRY)

    async def _client(self, conn: socket.socket) -> None:
        try:
            reader, writer = await asyncio.open_connection(sock=conn)
        except OSError:
            conn.close()
            self._slots.release()
            return
        try:
            await self._serve(reader, writer)
        except Exception as exc:  # one client's trouble is never the loop's
            self._log.warning("listener_client_failed", reason=one_line(exc, named=True))
        finally:
            writer.transport.abort()
            self._slots.release()

    # --- one request ---

    def _metrics(self) -> tuple[int, str, bytes]:
        return 200, CONTENT_TYPE_LATEST, generate_latest(self._registry)

    @staticmethod
    def _verdict(verdict: Verdict) -> tuple[int, str, bytes]:
        body = json.dumps({"ok": verdict.ok, **verdict.detail}).encode()
        return (200 if verdict.ok else 503), "application/json", body

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST)
        try:
            async with asyncio.timeout(self.read_timeout):
                request = await self._read_request(connection, reader)
            if request is None:
                return
            target = request.target.decode("ascii", "replace").split("?", 1)[0]
            route = self._routes.get(target)
            if request.method not in (b"GET", b"HEAD"):
                status, kind, body = 405, "text/plain", b"method not allowed\n"
            elif route is None:
                status, kind, body = 404, "text/plain", b"not found: /metrics /healthz /readyz\n"
            else:
                status, kind, body = route()
            headers = [
                ("content-type", kind),
                ("content-length", str(len(body))),
                ("connection", "close"),
            ]
            reason = http.HTTPStatus(status).phrase.encode()
            response = h11.Response(status_code=status, headers=headers, reason=reason)
            writer.write(connection.send(response) or b"")
            if request.method != b"HEAD":
                writer.write(connection.send(h11.Data(data=body)) or b"")
            writer.write(connection.send(h11.EndOfMessage()) or b"")
            async with asyncio.timeout(WRITE_TIMEOUT):
                await writer.drain()
                writer.close()
                await writer.wait_closed()
        except (TimeoutError, ConnectionError, h11.RemoteProtocolError):
            pass

    @staticmethod
    async def _read_request(
        connection: h11.Connection, reader: asyncio.StreamReader
    ) -> h11.Request | None:
        while True:
            event = connection.next_event()
            if isinstance(event, h11.Request):
                return event
            if event is h11.NEED_DATA:
                connection.receive_data(await reader.read(8192))
            elif isinstance(event, h11.ConnectionClosed):
                return None
