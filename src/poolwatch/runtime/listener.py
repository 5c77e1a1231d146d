"""The optional HTTP listener: `/metrics`, `/healthz` (liveness), `/readyz` (readiness).

An asyncio server on the daemon's own loop, with h11 (already installed as httpx's HTTP/1.1
parser) doing the protocol, so there is no second thread touching the runner's state. Each
request has a read deadline; a scrape only formats values already held.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
from collections.abc import Callable

import h11
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from poolwatch.runtime.health import Verdict

_READ_TIMEOUT = 5.0
_MAX_REQUEST = 64 * 1024


def parse_listen(address: str) -> tuple[str, int]:
    """`host:port`, `:port` (all interfaces) or `[::1]:port`."""
    host, _, port = address.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 - ":port" asks for all


class Listener:
    def __init__(
        self,
        address: str,
        registry: CollectorRegistry,
        liveness: Callable[[], Verdict],
        readiness: Callable[[], Verdict],
    ) -> None:
        self.host, self.port = parse_listen(address)
        self._registry = registry
        self._routes: dict[str, Callable[[], tuple[int, str, bytes]]] = {
            "/metrics": self._metrics,
            "/healthz": lambda: self._verdict(liveness()),
            "/readyz": lambda: self._verdict(readiness()),
        }
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        sockets = self._server.sockets
        if sockets:
            self.port = int(sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._server.wait_closed()

    def _metrics(self) -> tuple[int, str, bytes]:
        return 200, CONTENT_TYPE_LATEST, generate_latest(self._registry)

    @staticmethod
    def _verdict(verdict: Verdict) -> tuple[int, str, bytes]:
        body = json.dumps({"ok": verdict.ok, **verdict.detail}).encode()
        return (200 if verdict.ok else 503), "application/json", body

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_REQUEST)
        try:
            async with asyncio.timeout(_READ_TIMEOUT):
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
            async with asyncio.timeout(_READ_TIMEOUT):
                await writer.drain()
        except (TimeoutError, ConnectionError, h11.RemoteProtocolError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

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
