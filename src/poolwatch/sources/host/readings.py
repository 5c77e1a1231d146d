"""The host source's readings table (docs/sources/host.md documents each)."""

from poolwatch.core.model import UP_CHECK

CHECKS = (
    UP_CHECK,
    "cpu_percent",
    "memory_percent",
    "load1",
    "network_receive_bytes_per_second",
    "network_transmit_bytes_per_second",
    "disk_percent",
    "disk_up",
)
BOUNDED_PERCENT = frozenset({"cpu_percent", "memory_percent", "disk_percent"})
