"""Settings of the Docker source (README "Source: Docker")."""

from __future__ import annotations

from collections.abc import Collection
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from poolwatch.config.fields import Duration, Switch
from poolwatch.config.plugin import EnvVar, SourceSettings
from poolwatch.sources.docker.readings import BOUNDED_PERCENT, CHECKS

if TYPE_CHECKING:
    from poolwatch.sources import Planned


class DockerSettings(SourceSettings):
    CHECKS: ClassVar[tuple[str, ...]] = CHECKS
    BOUNDED_PERCENT: ClassVar[frozenset[str]] = BOUNDED_PERCENT
    ENVIRONMENT: ClassVar[tuple[EnvVar, ...]] = (
        EnvVar("POOLWATCH_DOCKER", ("enabled",)),
        EnvVar("POOLWATCH_DOCKER_CGROUP_ROOT", ("cgroup_root",)),
    )

    enabled: Switch = "auto"
    include: list[str] = []
    exclude: list[str] = []
    restart_window: Duration = 600.0
    stats: Literal["auto", "cgroup", "api"] = "auto"
    cgroup_root: Path = Path("/sys/fs/cgroup")
    concurrency: int = Field(8, ge=1, le=64)

    async def plan(self, running: Collection[str]) -> list[Planned]:
        if self.enabled == "off":
            return []
        from poolwatch.sources import planned
        from poolwatch.sources.docker.collector import DockerCollector

        owner = f"docker:{DockerCollector.instance}"
        # a reload keeps a running Docker source even if the engine is down right now: that is
        # DockerDown, not "no Docker here"
        if self.enabled == "auto" and owner not in running and not await self.answers():
            return []
        return [planned(owner, self, partial(DockerCollector, self))]

    async def answers(self) -> bool:
        """`enabled: auto`: is there an engine? Asked with a throw-away client, so that a reload
        that keeps the running collector builds nothing that lingers."""
        from poolwatch.sources.docker.collector import DockerCollector

        probe = DockerCollector(self)
        try:
            return await probe.probe()
        finally:
            await probe.close()
