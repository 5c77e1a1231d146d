"""Container CPU and memory from raw counters, with the docker CLI's own arithmetic. Pure.

The counters come either from the Engine API's stats JSON or straight from cgroup files; both are
turned into one `Sample`, so the two paths cannot disagree on the math:

- CPU % = delta container CPU time / delta host CPU time * online CPUs * 100 (0 when either
  delta is not positive), as `docker stats` prints it: 100 is one full CPU.
- memory used = usage - `total_inactive_file` (cgroup v1) or - `inactive_file` (cgroup v2), when
  that is smaller than usage; memory % = used / limit * 100.
- a limit above the machine's memory (unlimited) is the machine's memory, as dockerd reports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

NANOSECONDS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Sample:
    """One reading of a container's counters; CPU % needs two of them."""

    cpu_ns: int
    """The container's total CPU time."""
    system_ns: int
    """The host's total CPU time, dockerd's `system_cpu_usage`."""
    online_cpus: int
    memory_used: int
    """Usage minus inactive file cache, the CLI's `MEM USAGE`."""
    memory_limit: int


def memory_used(usage: int, stats: Mapping[str, int]) -> int:
    """The CLI's `calculateMemUsageUnixNoCache`: cgroup v1 stats have `total_inactive_file`,
    v2 stats `inactive_file`."""
    inactive = stats.get("total_inactive_file")
    if inactive is not None:
        if inactive < usage:
            return usage - inactive
    else:
        inactive = stats.get("inactive_file", 0)
        if inactive < usage:
            return usage - inactive
    return usage


def cpu_percent(previous: Sample, current: Sample) -> float:
    """The CLI's `calculateCPUPercentUnix`, with our own previous sample as `precpu_stats`."""
    cpu_delta = current.cpu_ns - previous.cpu_ns
    system_delta = current.system_ns - previous.system_ns
    if system_delta > 0 and cpu_delta > 0:
        return cpu_delta / system_delta * current.online_cpus * 100.0
    return 0.0


def memory_percent(sample: Sample) -> float:
    return sample.memory_used / sample.memory_limit * 100.0 if sample.memory_limit else 0.0


def clamp_limit(limit: int | None, machine_memory: int) -> int:
    """dockerd reports the machine's memory for a container without a limit."""
    if limit is None or (machine_memory > 0 and limit > machine_memory):
        return machine_memory
    return limit


def from_api(stats: Mapping[str, Any]) -> Sample | None:
    """A sample from `GET /containers/{id}/stats` (one-shot or not); None for a stopped container
    (dockerd then answers with zeros)."""
    cpu = stats.get("cpu_stats") or {}
    usage = cpu.get("cpu_usage") or {}
    memory = stats.get("memory_stats") or {}
    system = cpu.get("system_cpu_usage")
    if not system or "usage" not in memory:
        return None
    online = int(cpu.get("online_cpus") or len(usage.get("percpu_usage") or ()) or 0)
    return Sample(
        cpu_ns=int(usage.get("total_usage", 0)),
        system_ns=int(system),
        online_cpus=online,
        memory_used=memory_used(int(memory["usage"]), memory.get("stats") or {}),
        memory_limit=int(memory.get("limit", 0)),
    )


def cpu_limit_percent(host_config: Mapping[str, Any], online_cpus: int) -> float:
    """The container's CPU ceiling in `docker stats` points (`--cpus 0.5` → 50): the tightest of
    `--cpus`, `--cpu-quota/--cpu-period` and `--cpuset-cpus`, else every online CPU."""
    ceilings = [online_cpus * 100.0]
    nano = host_config.get("NanoCpus") or 0
    if nano > 0:
        ceilings.append(nano / NANOSECONDS * 100.0)
    quota = host_config.get("CpuQuota") or 0
    if quota > 0:
        period = host_config.get("CpuPeriod") or 100_000
        ceilings.append(quota / period * 100.0)
    cpuset = host_config.get("CpusetCpus") or ""
    if cpuset:
        ceilings.append(cpuset_size(cpuset) * 100.0)
    return min(ceilings)


def cpuset_size(text: str) -> int:
    """`0-3,5` → 5."""
    count = 0
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        low, _, high = part.partition("-")
        count += int(high) - int(low) + 1 if high else 1
    return count


def system_cpu_ns(proc_stat: str, clock_ticks: int) -> int:
    """dockerd's `getSystemCPUUsage`: the first 7 fields of /proc/stat's `cpu` line, in ns."""
    for line in proc_stat.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            if len(fields) < 8:
                break
            return sum(int(v) for v in fields[1:8]) * NANOSECONDS // clock_ticks
    raise ValueError("no cpu line in /proc/stat")


def cgroup_limit(text: str) -> int | None:
    """`memory.max` (v2) says `max` when unlimited; v1 writes a huge number instead."""
    text = text.strip()
    return None if text == "max" else int(text)
