"""structlog set-up, done once by the entry point: JSON lines off a terminal, colour on one.

Every line passes the configuration's `Scrubber` last before rendering: the free-text fields
(reasons, errors) lose any configured secret, even inside a driver's error text, while structured
fields (an event's source, instance, labels) are never rewritten.

Every line is ours, so every line is JSON (off a terminal): what libraries write through stdlib
`logging` (and warnings) is passed on as a `library_log` line, and the event loop's own reports
(an exception no task retrieved, a failing callback) as `asyncio_error`, through
`loop_exception_handler`, instead of tracebacks on stderr.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import MutableMapping
from typing import Any, Literal, TextIO

import structlog

from poolwatch.core.model import now_utc, rfc3339
from poolwatch.core.reasons import one_line
from poolwatch.core.secrets import Scrubber

LogFormat = Literal["auto", "json", "console"]


def _add_time(_logger: object, _method: str, event_dict: MutableMapping[str, Any]) -> Any:
    event_dict.setdefault("time", rfc3339(now_utc()))
    return event_dict


def _json_default(value: object) -> str:
    return str(value)


def configure(
    log_format: LogFormat = "auto",
    stream: TextIO | None = None,
    scrubber: Scrubber | None = None,
) -> None:
    """Route every structlog logger to `stream` (stdout by default) in the chosen format."""
    stream = stream or sys.stdout
    scrubber = scrubber or Scrubber()
    console = log_format == "console" or (log_format == "auto" and stream.isatty())
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=stream.isatty())
        if console
        else structlog.processors.JSONRenderer(serializer=json.dumps, default=_json_default)
    )
    _bridge_stdlib_logging()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            _add_time,
            structlog.processors.format_exc_info,
            scrubber.log_processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )


def get_logger(**context: Any) -> Any:
    return structlog.get_logger("poolwatch", **context)


class _ToStructlog(logging.Handler):
    """stdlib logging records (libraries: urllib3, docker, asyncio) as poolwatch's own lines."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            lines = record.getMessage().strip().splitlines()
            reason = lines[0] if lines else record.levelname
            if record.exc_info and record.exc_info[1] is not None:
                reason += f": {one_line(record.exc_info[1], named=True)}"
            level = record.levelname.lower()
            write = getattr(get_logger(), level if level in _LEVELS else "warning")
            write("library_log", logger=record.name, reason=reason)
        except Exception:  # a log line that cannot be written must never raise
            self.handleError(record)


_LEVELS = frozenset({"debug", "info", "warning", "error", "critical"})


def _bridge_stdlib_logging() -> None:
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _ToStructlog)]:
        root.removeHandler(handler)
    root.addHandler(_ToStructlog())
    if root.level == logging.NOTSET or root.level < logging.WARNING:
        root.setLevel(logging.WARNING)
    logging.captureWarnings(True)


def loop_exception_handler(_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """The event loop's reports as one JSON line each (never a traceback on stderr)."""
    exc = context.get("exception")
    task = context.get("task") or context.get("future")
    get_logger().error(
        "asyncio_error",
        reason=one_line(exc, named=True) if isinstance(exc, BaseException) else None,
        detail=str(context.get("message") or ""),
        task=task.get_name() if isinstance(task, asyncio.Task) else None,
    )
