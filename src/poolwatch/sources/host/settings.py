"""Settings of the host source (README "Source: host")."""

from __future__ import annotations

from collections.abc import Collection
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from poolwatch.config.plugin import EnvVar, SourceSettings
from poolwatch.sources.host.readings import BOUNDED_PERCENT, CHECKS

if TYPE_CHECKING:
    from poolwatch.sources import Planned


class HostSettings(SourceSettings):
    CHECKS: ClassVar[tuple[str, ...]] = CHECKS
    BOUNDED_PERCENT: ClassVar[frozenset[str]] = BOUNDED_PERCENT
    ENVIRONMENT: ClassVar[tuple[EnvVar, ...]] = (
        EnvVar("CPU_WARNING", ("rules", "cpu_percent", "warning")),
        EnvVar("CPU_CRITICAL", ("rules", "cpu_percent", "critical")),
        EnvVar("MEMORY_WARNING", ("rules", "memory_percent", "warning")),
        EnvVar("MEMORY_CRITICAL", ("rules", "memory_percent", "critical")),
        EnvVar("DISK_WARNING", ("rules", "disk_percent", "warning")),
        EnvVar("DISK_CRITICAL", ("rules", "disk_percent", "critical")),
        EnvVar("POOLWATCH_PROCFS", ("procfs",)),
        EnvVar("POOLWATCH_ROOTFS", ("rootfs",)),
        EnvVar("POOLWATCH_HOST_STATS", ("enabled",)),
    )

    enabled: bool = True
    procfs: Path = Path("/proc")
    rootfs: Path = Path("/")

    async def plan(self, running: Collection[str]) -> list[Planned]:
        from poolwatch.sources import planned
        from poolwatch.sources.host.collector import HostCollector, host_name

        if not self.enabled:
            return []
        return [planned(f"host:{host_name(self.rootfs)}", self, partial(HostCollector, self))]
