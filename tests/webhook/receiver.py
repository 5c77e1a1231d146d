"""A real HTTP receiver for the webhook tests: records every request, answers as scripted.

stdlib `http.server` in a thread, on a fixed port so that it can be stopped (connection refused)
and started again where poolwatch expects it. `script` holds the answers for the next requests
(status, headers, delay, or `hang` until stopped); when it is empty the answer is 200.

Run as a script (`python3 receiver.py --host 0.0.0.0 --port 8080`, stdlib only) it is a receiver
in a container of its own, as the compose stack test uses it: every request becomes one JSON line
on stdout (`docker logs`), every answer is 200, SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import collections
import json
import signal
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    delay: float = 0.0
    hang: bool = False
    """Never answer (until the receiver stops): what a wedged server does."""


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    status: int
    """The answer given; 0 when the receiver hung."""
    peer: tuple[str, int] = ("", 0)
    """The client's address and port: one per TCP connection."""

    @property
    def id(self) -> str:
        return self.headers.get("webhook-id", "")

    def json(self) -> Any:
        return json.loads(self.body)

    def line(self) -> str:
        """The request as one JSON line, as the script prints it."""
        return json.dumps({"path": self.path, "headers": self.headers, "body": self.body.decode()})


class Receiver:
    def __init__(
        self,
        port: int,
        tls: ssl.SSLContext | None = None,
        host: str = "127.0.0.1",
        on_request: Callable[[Request], None] | None = None,
    ) -> None:
        self.port = port
        self.tls = tls
        self.host = host
        self.on_request = on_request
        self.url = f"{'https' if tls else 'http'}://{host}:{port}/hook"
        self.requests: list[Request] = []
        self.script: collections.deque[Answer] = collections.deque()
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- control -------------------------------------------------------------------------------

    def start(self) -> None:
        receiver = self
        self._released.clear()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as every real receiver does

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                answer = receiver._next()
                status = 0 if answer.hang else answer.status
                receiver._record(
                    self.path, dict(self.headers.items()), body, status, self.client_address
                )
                if answer.hang:
                    receiver._released.wait(60)
                    return
                if answer.delay:
                    receiver._released.wait(answer.delay)
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        server = ThreadingHTTPServer((self.host, self.port), Handler)
        server.daemon_threads = True
        if self.tls is not None:
            server.socket = self.tls.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop listening; requests left hanging are dropped without an answer."""
        self._released.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    # --- inspection ----------------------------------------------------------------------------

    def answered(self, status: int = 200) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.status == status]

    # --- internals -----------------------------------------------------------------------------

    def _next(self) -> Answer:
        with self._lock:
            return self.script.popleft() if self.script else Answer()

    def _record(
        self, path: str, headers: dict[str, str], body: bytes, status: int, peer: Any
    ) -> None:
        with self._lock:
            lowered = {k.lower(): v for k, v in headers.items()}
            request = Request(path, lowered, body, time.monotonic(), status, tuple(peer[:2]))
            self.requests.append(request)
            if self.on_request is not None:
                self.on_request(request)


def main() -> None:
    parser = argparse.ArgumentParser(description="An HTTP receiver printing each request.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    stop = {signal.SIGTERM, signal.SIGINT}
    # blocked before the server's threads start, so they inherit the mask and sigwait gets them
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)
    receiver = Receiver(
        args.port, host=args.host, on_request=lambda request: print(request.line(), flush=True)
    )
    receiver.start()
    print(json.dumps({"listening": f"{args.host}:{args.port}"}), flush=True)
    signal.sigwait(stop)
    receiver.stop()


if __name__ == "__main__":
    main()
