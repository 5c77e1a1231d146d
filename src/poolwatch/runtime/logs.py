"""structlog set-up, done once by the entry point: JSON lines off a terminal, colour on one.

Every line passes the configuration's `Scrubber` last before rendering: the free-text fields
(reasons, errors) lose any configured secret, even inside a driver's error text, while structured
fields (an event's source, instance, labels) are never rewritten.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import MutableMapping
from typing import Any, Literal, TextIO

import structlog

from poolwatch.core.model import now_utc, rfc3339
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
