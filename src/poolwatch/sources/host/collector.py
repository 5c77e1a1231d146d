"""Host source: CPU, memory, disks, network and load of the machine poolwatch watches.

Inside a container the host is seen through `procfs` (`/host/proc`) and `rootfs` (`/host/root`):
mounts then come from `{procfs}/1/mountinfo` and network counters from `{procfs}/1/net/dev` (the
host's namespaces, not the container's), and usage from `statvfs(rootfs + mountpoint)`.

The procfs files are read on the event loop: the kernel writes them from memory, and reading
them never waits for a filesystem. `statvfs` does, and runs on the prober's own threads
(`probe.py`), each filesystem under `host.disks.timeout`.

Readings (source `host`):
| check | instance | unit | limit | labels |
|---|---|---|---|---|
| `up` | host name | `bool` | | |
| `cpu_percent` | host name | `percent` | 100 | |
| `memory_percent` | host name | `percent` | 100 | |
| `load1` | host name | `load` | CPU count | |
| `network_receive_bytes_per_second` | host name | `bytes_per_second` | | |
| `network_transmit_bytes_per_second` | host name | `bytes_per_second` | | |
| `disk_percent` | mount point | `percent` | 100 | `device`, `fstype` |
| `disk_up` | mount point | `bool` | | `device`, `fstype` |
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path

from poolwatch.config.rules import Rules
from poolwatch.core.model import UP_CHECK, Reading
from poolwatch.sources import SourceError
from poolwatch.sources.host.mounts import Mount, one_per_filesystem, parse_mountinfo, watched
from poolwatch.sources.host.name import host_name
from poolwatch.sources.host.probe import Prober, Unavailable
from poolwatch.sources.host.settings import HostSettings

SOURCE = "host"

_PRIME_SECONDS = 0.25


def parse_net_dev(text: str) -> tuple[int, int]:
    """Total received and transmitted bytes over every interface but loopback."""
    received = transmitted = 0
    for line in text.splitlines()[2:]:
        name, _, counters = line.partition(":")
        fields = counters.split()
        if name.strip() == "lo" or len(fields) < 9:
            continue
        received += int(fields[0])
        transmitted += int(fields[8])
    return received, transmitted


def parse_stat(text: str) -> tuple[float, float, int]:
    """Busy and total CPU time (jiffies) and the CPU count, from `/proc/stat`.

    Read from the file rather than with psutil, whose procfs path is one process-wide global:
    the collector is given its procfs and reads it. Guest time is already counted in user/nice.
    """
    busy = total = 0.0
    cpus = 0
    for line in text.splitlines():
        name, _, rest = line.partition(" ")
        if name == "cpu":
            fields = [float(f) for f in rest.split()[:8]]
            idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)
            total = sum(fields)
            busy = total - idle
        elif name.startswith("cpu") and name[3:].isdigit():
            cpus += 1
    return busy, total, cpus


def parse_meminfo(text: str) -> float:
    """Memory in use, in percent, as psutil and `free` compute it: 1 - MemAvailable/MemTotal."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        fields = rest.split()
        if fields:
            values[key] = float(fields[0])
    total = values.get("MemTotal", 0.0)
    if total <= 0:
        raise OSError("meminfo has no MemTotal")
    available = values.get("MemAvailable", values.get("MemFree", 0.0))
    return max(0.0, min(100.0, 100.0 * (total - available) / total))


class HostCollector:
    """Reads the host from its procfs files and statvfs; keeps the previous counters for deltas.
    No process-wide state: two collectors may read two procfs trees."""

    source = SOURCE

    def __init__(self, config: HostSettings, instance: str | None = None) -> None:
        self.instance = instance or host_name(config.rootfs)
        self.interval = config.interval
        self.timeout = config.timeout
        self.rules: Rules = config.rules
        self.procfs = config.procfs
        self.rootfs = config.rootfs
        self.disks = config.disks
        self.last_poll_partial = False
        """A mount did not answer: its other alerts are not "no longer reported" (Partial)."""
        self._prober = Prober(config.disks.timeout)
        self._cpu: tuple[float, float] | None = None
        self._net: tuple[float, int, int] | None = None
        self._cpus = 0
        self._mountinfo = ""
        self._mounts: list[Mount] = []
        """The watched mounts of `_mountinfo`: read every poll, parsed only when it changed."""

    def _host_view(self, name: str) -> Path:
        """`/proc/<name>` of the host: pid 1's view when procfs is the host's, mounted elsewhere."""
        if self.procfs == Path("/proc"):
            return self.procfs / "self" / name
        return self.procfs / "1" / name

    async def collect(self) -> Sequence[Reading]:
        try:
            if self._cpu is None:
                # rates need two samples; take the first now so that even the first poll is real
                self._prime()
                await asyncio.sleep(_PRIME_SECONDS)
            readings = self._procfs_readings()
            mounts = self._watched_mounts()
        except OSError as exc:
            raise SourceError(f"cannot read host statistics under {self.procfs}: {exc}") from exc
        readings.extend(await self._disks(mounts))
        return readings

    async def close(self) -> None:
        self._prober.close()

    def reconfigure(self, settings: HostSettings) -> None:
        self.rules, self.interval = settings.rules, settings.interval
        self.timeout = settings.timeout

    def _prime(self) -> None:
        self._sample_cpu()
        self._network()

    def _sample_cpu(self) -> float | None:
        busy, total, self._cpus = parse_stat((self.procfs / "stat").read_text())
        previous, self._cpu = self._cpu, (busy, total)
        if previous is None or total <= previous[1]:
            return None
        return max(0.0, min(100.0, 100.0 * (busy - previous[0]) / (total - previous[1])))

    def _reading(self, check: str, value: float, unit: str, limit: float | None = None) -> Reading:
        return Reading(SOURCE, self.instance, check, value, unit, limit)

    def _procfs_readings(self) -> list[Reading]:
        readings = [self._reading(UP_CHECK, 1, "bool")]
        cpu = self._sample_cpu()
        if cpu is not None:
            readings.append(self._reading("cpu_percent", cpu, "percent", 100))
        memory = parse_meminfo((self.procfs / "meminfo").read_text())
        readings.append(self._reading("memory_percent", memory, "percent", 100))
        load1 = float((self.procfs / "loadavg").read_text().split()[0])
        readings.append(self._reading("load1", load1, "load", self._cpus or 1))
        readings.extend(self._network())
        return readings

    def _network(self) -> list[Reading]:
        received, transmitted = parse_net_dev(self._host_view("net/dev").read_text())
        now = time.monotonic()
        previous, self._net = self._net, (now, received, transmitted)
        if previous is None or now <= previous[0]:
            return []
        elapsed = now - previous[0]
        # counters reset when an interface goes away; a negative delta is not traffic
        rx = max(0, received - previous[1]) / elapsed
        tx = max(0, transmitted - previous[2]) / elapsed
        return [
            self._reading("network_receive_bytes_per_second", rx, "bytes_per_second"),
            self._reading("network_transmit_bytes_per_second", tx, "bytes_per_second"),
        ]

    def _watched_mounts(self) -> list[Mount]:
        """The mounts this poll measures, one per filesystem. The table is read every poll but
        parsed only when it changed (each container adds lines; most polls change none)."""
        text = self._host_view("mountinfo").read_text()
        if text != self._mountinfo:
            d = self.disks
            self._mounts = one_per_filesystem(
                m
                for m in parse_mountinfo(text)
                if watched(m, network=d.network, include=d.include, exclude=d.exclude)
            )
            self._mountinfo = text
        return self._mounts

    async def _disks(self, mounts: Sequence[Mount]) -> list[Reading]:
        paths = {m.filesystem: str(self.rootfs / m.mountpoint.lstrip("/")) for m in mounts}
        answers = await self._prober.measure(paths)
        readings: list[Reading] = []
        for mount in mounts:
            answer = answers.get(mount.filesystem)
            if answer is None:
                continue
            where = (SOURCE, mount.mountpoint)
            labels = {"device": mount.device, "fstype": mount.fstype}
            if isinstance(answer, Unavailable):
                readings.append(Reading(*where, "disk_up", 0, "bool", None, labels, answer.reason))
                continue
            readings.append(Reading(*where, "disk_up", 1, "bool", None, labels))
            readings.append(Reading(*where, "disk_percent", answer.percent, "percent", 100, labels))
        self.last_poll_partial = any(isinstance(a, Unavailable) for a in answers.values())
        return readings
