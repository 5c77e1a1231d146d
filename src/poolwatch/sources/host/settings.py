"""Settings of the host source (docs/sources/host.md)."""

from __future__ import annotations

from collections.abc import Collection
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from pydantic import model_validator

from poolwatch.config.fields import Duration, Frozen, format_duration
from poolwatch.config.plugin import EnvVar, SourceSettings
from poolwatch.sources.host.readings import BOUNDED_PERCENT, CHECKS

if TYPE_CHECKING:
    from poolwatch.sources import Planned


class DiskSettings(Frozen):
    """Which mounts are measured (by filesystem type, see `mounts.py`) and how long each may take
    to answer."""

    network: bool = False
    """NFS, SMB and FUSE mounts too: off by default, their answer depends on a server or process."""
    include: list[str] = []
    """Mounts to measure whatever their type: mount point globs (`/srv/*`) or fstype globs."""
    exclude: list[str] = []
    """Mounts never measured, in the same forms; exclude wins."""
    timeout: Duration = 2.0
    """How long one filesystem may take to answer `statvfs` before it counts as hung."""


class HostSettings(SourceSettings):
    COLLECTOR: ClassVar[str] = "poolwatch.sources.host.collector:HostCollector"
    SOURCE: ClassVar[str] = "host"
    TITLE: ClassVar[str] = "Host"
    TEAM: ClassVar[str] = "infrastructure"
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
        EnvVar("POOLWATCH_DISK_NETWORK", ("disks", "network")),
    )

    enabled: bool = True
    procfs: Path = Path("/proc")
    rootfs: Path = Path("/")
    disks: DiskSettings = DiskSettings()

    @model_validator(mode="after")
    def _disk_timeout_within_poll(self) -> HostSettings:
        """A hung mount must be reported on its own, before the whole poll times out (a
        source that is off polls nothing: its inherited timeout is not judged)."""
        if self.enabled and self.disks.timeout >= self.timeout:
            raise ValueError(
                f"disks.timeout {format_duration(self.disks.timeout)} must be shorter than the "
                f"host timeout {format_duration(self.timeout)}, so that a mount that does not "
                "answer is reported on its own instead of failing the whole poll"
            )
        return self

    async def plan(self, running: Collection[str]) -> list[Planned]:
        from poolwatch.sources import planned
        from poolwatch.sources.host.name import host_name

        if not self.enabled:
            return []
        return [planned(f"host:{host_name(self.rootfs)}", self, partial(self.collector(), self))]
