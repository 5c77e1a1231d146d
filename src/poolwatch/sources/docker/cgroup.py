"""Container counters read straight from cgroup files, as cAdvisor does: the fast path.

dockerd's stats endpoint answers on its collector's next tick, about a second per call even with
one-shot, so 200 containers cannot be polled in a second through it. The same counters are plain
files: four small reads per container. Used when the cgroup hierarchy is mounted (on the host, or
`/sys/fs/cgroup` bind-mounted read-only into poolwatch's container); the API is the fallback for a
container whose cgroup is not found.

Blocking (file reads): call from a worker thread.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from poolwatch.sources.docker.stats import (
    Sample,
    cgroup_limit,
    clamp_limit,
    memory_used,
    system_cpu_ns,
)

INACTIVE_FILE = (b"total_inactive_file", b"inactive_file")
"""What `memory_used` takes from `memory.stat` (v1 writes both, v2 only the second)."""


@dataclass(frozen=True, slots=True)
class CgroupFiles:
    """Where one container's counters live."""

    cpu: Path
    """cgroup v1: `cpuacct.usage` (ns); v2: `cpu.stat` (`usage_usec`)."""
    memory_dir: Path
    v2: bool
    paths: tuple[str, str, str, str] = field(init=False, repr=False, compare=False)
    """The CPU file, `memory.stat`, the usage and the limit, joined once: every poll opens them
    (pathlib's joins and text decoding were half of reading 200 containers)."""

    def __post_init__(self) -> None:
        usage, limit = (
            ("memory.current", "memory.max")
            if self.v2
            else ("memory.usage_in_bytes", "memory.limit_in_bytes")
        )
        memory = str(self.memory_dir)
        joined = (str(self.cpu), f"{memory}/memory.stat", f"{memory}/{usage}", f"{memory}/{limit}")
        object.__setattr__(self, "paths", joined)


class CgroupReader:
    """Finds and reads container cgroups under `root`; `machine_memory` caps unlimited limits."""

    def __init__(
        self, root: Path, machine_memory: int, proc_stat: Path = Path("/proc/stat")
    ) -> None:
        self.root = root
        self.machine_memory = machine_memory
        self.proc_stat = proc_stat
        self.clock_ticks = os.sysconf("SC_CLK_TCK")
        self.online_cpus = os.sysconf("SC_NPROCESSORS_ONLN")
        self.v2 = (root / "cgroup.controllers").is_file()
        self._cpuacct = next(
            (
                root / name
                for name in ("cpuacct", "cpu,cpuacct", "cpuacct,cpu")
                if (root / name).is_dir()
            ),
            None,
        )
        self.available = self.v2 or (self._cpuacct is not None and (root / "memory").is_dir())

    def locate(self, container_id: str, cgroup_parent: str = "") -> CgroupFiles | None:
        """The container's cgroup under the cgroupfs or systemd driver (or its CgroupParent)."""
        if not self.available:
            return None
        for relative in _candidates(container_id, cgroup_parent):
            if self.v2:
                directory = self.root / relative
                if (directory / "cpu.stat").is_file():
                    return CgroupFiles(directory / "cpu.stat", directory, v2=True)
            else:
                assert self._cpuacct is not None
                cpu = self._cpuacct / relative / "cpuacct.usage"
                memory = self.root / "memory" / relative
                if cpu.is_file() and (memory / "memory.stat").is_file():
                    return CgroupFiles(cpu, memory, v2=False)
        return None

    def system_ns(self) -> int:
        return system_cpu_ns(self.proc_stat.read_text(), self.clock_ticks)

    def read(self, files: CgroupFiles, system_ns: int) -> Sample:
        """One sample; raises OSError when the cgroup went away (the container stopped)."""
        cpu_file, stat_file, usage_file, limit_file = files.paths
        stats = stat_values(_read(stat_file), INACTIVE_FILE)
        if files.v2:
            cpu_ns = stat_values(_read(cpu_file), (b"usage_usec",))["usage_usec"] * 1000
        else:
            cpu_ns = int(_read(cpu_file))
        usage = int(_read(usage_file))
        limit = cgroup_limit(_read(limit_file).decode())
        return Sample(
            cpu_ns=cpu_ns,
            system_ns=system_ns,
            online_cpus=self.online_cpus,
            memory_used=memory_used(usage, stats),
            memory_limit=clamp_limit(limit, self.machine_memory),
        )


def _read(path: str) -> bytes:
    """A small counter file, whole (no pathlib, no decoding: a poll reads four per container)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def stat_values(data: bytes, names: tuple[bytes, ...]) -> dict[str, int]:
    """The named integer `key value` lines of a flat-keyed file (`memory.stat`, `cpu.stat`),
    without parsing the dozens of other lines; a name that is absent (or not an integer) is
    left out."""
    text = b"\n" + data
    found: dict[str, int] = {}
    for name in names:
        start = text.find(b"\n" + name + b" ")
        if start < 0:
            continue
        start += len(name) + 2
        end = text.find(b"\n", start)
        value = text[start : end if end >= 0 else len(text)].strip()
        if value.lstrip(b"-").isdigit():
            found[name.decode()] = int(value)
    return found


def _candidates(container_id: str, cgroup_parent: str) -> list[str]:
    parent = cgroup_parent.strip("/")
    found: list[str] = []
    if parent.endswith(".slice"):
        found.append(f"{_slice_path(parent)}/docker-{container_id}.scope")
    elif parent:
        found.append(f"{parent}/{container_id}")
    found += [f"docker/{container_id}", f"system.slice/docker-{container_id}.scope"]
    return found


def _slice_path(name: str) -> str:
    """systemd nests `a-b.slice` as `a.slice/a-b.slice`."""
    stem = name.removesuffix(".slice")
    parts = stem.split("-")
    return "/".join("-".join(parts[: i + 1]) + ".slice" for i in range(len(parts)))
