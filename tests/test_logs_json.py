"""Every line poolwatch writes is JSON: what libraries log through stdlib `logging`, and what the
event loop reports, become poolwatch's own lines instead of plain text or tracebacks."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from poolwatch import logs


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    out = io.StringIO()
    logs.configure("json", out)
    yield out
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)
    structlog.reset_defaults()


def lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_library_warning_is_a_json_line(stream: io.StringIO) -> None:
    logging.getLogger("urllib3.connectionpool").warning(
        "Connection pool is full, discarding connection: %s\nsecond line", "localhost"
    )
    (line,) = lines(stream)
    assert line["event"] == "library_log"
    assert line["logger"] == "urllib3.connectionpool"
    assert line["reason"] == "Connection pool is full, discarding connection: localhost"
    assert line["level"] == "warning"


async def test_the_loops_reports_are_json_lines(stream: io.StringIO) -> None:
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    loop.set_exception_handler(logs.loop_exception_handler)
    try:
        loop.call_exception_handler(
            {"message": "socket.accept() out of system resource", "exception": OSError(24, "x")}
        )
    finally:
        loop.set_exception_handler(previous)
    (line,) = lines(stream)
    assert line["event"] == "asyncio_error"
    assert line["detail"] == "socket.accept() out of system resource"
    assert line["reason"] == "OSError: [Errno 24] x"
