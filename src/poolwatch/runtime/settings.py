"""What a reload may change in the running parts, in one value handed to them by one call
(`Runner.configure`), so that no part has its fields assigned from outside."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from poolwatch.runtime.limits import Origin


@dataclass(frozen=True, slots=True)
class RuntimeSettings:
    """The runtime's knobs that come from the configuration."""

    shutdown_timeout: float = 5.0
    """Seconds the sinks get, in all, to deliver what is left on stop."""
    log_samples: bool = False
    """Log every poll's values (`POOLWATCH_LOG_SAMPLES`)."""
    scrub: Callable[[str], str] = str
    """Masks the configured secrets in failure reasons: text from outside poolwatch."""
    origin: Origin | None = None
    """Where a setting came from, for the limit notes (`Config.origin_of`); None keeps what
    the `LimitWatch` was built with."""
