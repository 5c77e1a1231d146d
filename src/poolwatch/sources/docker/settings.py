"""Settings of the Docker source (docs/sources/docker.md)."""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from poolwatch.config.fields import Duration, Switch
from poolwatch.config.plugin import EnvVar, SourceSettings
from poolwatch.sources.docker.readings import BOUNDED_PERCENT, CHECKS, ENGINE_INSTANCE, SOURCE

if TYPE_CHECKING:
    from poolwatch.sources import Planned


class DockerSettings(SourceSettings):
    COLLECTOR: ClassVar[str] = "poolwatch.sources.docker.collector:DockerCollector"
    SOURCE: ClassVar[str] = SOURCE
    TITLE: ClassVar[str] = "Docker"
    TEAM: ClassVar[str] = "infrastructure"
    CHECKS: ClassVar[tuple[str, ...]] = CHECKS
    BOUNDED_PERCENT: ClassVar[frozenset[str]] = BOUNDED_PERCENT
    ENVIRONMENT: ClassVar[tuple[EnvVar, ...]] = (
        EnvVar("POOLWATCH_DOCKER", ("enabled",)),
        EnvVar("POOLWATCH_DOCKER_CGROUP_ROOT", ("cgroup_root",)),
    )

    enabled: Switch = "auto"
    include: list[str] = []
    exclude: list[str] = []
    honour_labels: bool = True
    """A container's own labels may drop it (`poolwatch.enable=false`) and set its thresholds."""
    restart_window: Duration = 600.0
    restart_grace: Duration = 30.0
    """A container its restart policy is restarting is paged only if still down after this."""
    forget_after: Duration = 86400.0
    """An ending poolwatch did not see that is older than this is history, not an outage; a
    compose service not seen running for this long is forgotten (ContainerMissing)."""
    state_dir: Path | None = None
    """Where the compose services seen are kept (ContainerMissing): the top-level `state_dir`
    unless set here."""
    stats: Literal["auto", "cgroup", "api"] = "auto"
    cgroup_root: Path = Path("/sys/fs/cgroup")
    concurrency: int = Field(8, ge=1, le=64)

    @classmethod
    def settle(
        cls,
        section: dict[str, Any],
        merged: Mapping[str, Any],
        said: Mapping[str, Any],
        sources: Sequence[type[SourceSettings]],
    ) -> None:
        """With the host mounted at `host.rootfs` (recursively, as Docker bind-mounts), its
        cgroup files are at `{rootfs}/sys/fs/cgroup`: read them there unless told otherwise."""
        rootfs = str((merged.get("host") or {}).get("rootfs") or "/").rstrip("/")
        if rootfs and "cgroup_root" not in said:
            section["cgroup_root"] = f"{rootfs}/sys/fs/cgroup"
        if section.get("state_dir") is None:
            section["state_dir"] = merged.get("state_dir")

    async def plan(self, running: Collection[str]) -> list[Planned]:
        if self.enabled == "off":
            return []
        from poolwatch.logs import get_logger
        from poolwatch.sources import planned
        from poolwatch.sources.docker.access import absent

        owner = f"{SOURCE}:{ENGINE_INSTANCE}"
        # `auto` is off only where there is no Docker at all; an engine that is there but down
        # or refusing poolwatch is DockerDown with its reason, never silence. A reload keeps a
        # running source whatever the environment says now.
        if self.enabled == "auto" and owner not in running:
            missing = absent(os.environ)
            if missing is not None:
                get_logger().info("docker_off", reason=missing, enabled="auto")
                return []
        return [planned(owner, self, partial(self.collector(), self))]
