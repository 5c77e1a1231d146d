"""The Docker source's readings table (docs/sources/docker.md documents each)."""

from poolwatch.core.model import UP_CHECK

CHECKS = (
    UP_CHECK,
    "cpu_percent",
    "memory_percent",
    "memory_usage_bytes",
    "restarts",
    "oom_killed",
    "healthy",
    "running",
    "died",
    "stopped",
    "missing",
)
BOUNDED_PERCENT = frozenset({"memory_percent"})
"""`cpu_percent` is not bounded by 100: a container may use several CPUs (its limit says how
many)."""
SOURCE = "docker"
ENGINE_INSTANCE = "engine"
"""The instance of `up`, and of the collector itself."""
