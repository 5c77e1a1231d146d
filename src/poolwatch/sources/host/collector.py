"""Host source: CPU, memory, disks, network and load of the machine poolwatch watches.

Inside a container the host is seen through `procfs` (`/host/proc`) and `rootfs` (`/host/root`):
mounts then come from `{procfs}/1/mounts` and network counters from `{procfs}/1/net/dev` (the
host's namespaces, not the container's), and usage from `statvfs(rootfs + mountpoint)`.

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
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from poolwatch.config.rules import Rules
from poolwatch.core.model import UP_CHECK, Reading
from poolwatch.sources import SourceError
from poolwatch.sources.host.settings import HostSettings

SOURCE = "host"

PSEUDO_FILESYSTEMS = frozenset(
    (
        "autofs",
        "binfmt_misc",
        "bpf",
        "cgroup",
        "cgroup2",
        "configfs",
        "debugfs",
        "devpts",
        "devtmpfs",
        "efivarfs",
        "fusectl",
        "fuse.lxcfs",
        "hugetlbfs",
        "iso9660",
        "mqueue",
        "nsfs",
        "overlay",
        "aufs",
        "proc",
        "pstore",
        "ramfs",
        "rpc_pipefs",
        "securityfs",
        "selinuxfs",
        "squashfs",
        "sysfs",
        "tmpfs",
        "tracefs",
        "nfsd",
        "shm",
        "fuse.gvfsd-fuse",
        "fuse.portal",
    )
)
"""Filesystems that hold no user data or are read-only images; their "usage" means nothing."""

_PRIME_SECONDS = 0.25


@dataclass(frozen=True, slots=True)
class Mount:
    device: str
    mountpoint: str
    fstype: str


def _unescape(field: str) -> str:
    """/proc/*/mounts escapes space, tab, newline and backslash as octal (`\\040`)."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def parse_mounts(text: str) -> list[Mount]:
    """Real filesystems from a mounts table, one per device (bind mounts repeat a device)."""
    mounts: list[Mount] = []
    devices: set[str] = set()
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        device, mountpoint, fstype = (_unescape(f) for f in fields[:3])
        if fstype in PSEUDO_FILESYSTEMS or device in devices or not device.startswith("/"):
            continue
        devices.add(device)
        mounts.append(Mount(device, mountpoint, fstype))
    return mounts


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


def host_name(rootfs: Path) -> str:
    """The watched host's name. In a container with the host mounted at `rootfs`, the host's
    `/etc/hostname` (the container's own name is its id, new at every upgrade)."""
    if rootfs != Path("/"):
        try:
            name = (rootfs / "etc" / "hostname").read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            name = ""
        if name:
            return name
    return socket.gethostname()


class HostCollector:
    """Reads the host from its procfs files (and statvfs through psutil); keeps the previous
    counters for deltas. No process-wide state: two collectors may read two procfs trees."""

    source = SOURCE

    def __init__(self, config: HostSettings, instance: str | None = None) -> None:
        self.instance = instance or host_name(config.rootfs)
        self.interval = config.interval
        self.timeout = config.timeout
        self.rules: Rules = config.rules
        self.procfs = config.procfs
        self.rootfs = config.rootfs
        self._cpu: tuple[float, float] | None = None
        self._net: tuple[float, int, int] | None = None
        self._cpus = 0

    def _host_view(self, name: str) -> Path:
        """`/proc/<name>` of the host: pid 1's view when procfs is the host's, mounted elsewhere."""
        if self.procfs == Path("/proc"):
            return self.procfs / "self" / name
        return self.procfs / "1" / name

    async def collect(self) -> Sequence[Reading]:
        try:
            if self._cpu is None:
                # rates need two samples; take the first now so that even the first poll is real
                await asyncio.to_thread(self._prime)
                await asyncio.sleep(_PRIME_SECONDS)
            # statvfs on a hung network mount blocks; a thread keeps the runner's timeout working
            return await asyncio.to_thread(self._collect_blocking)
        except OSError as exc:
            raise SourceError(f"cannot read host statistics under {self.procfs}: {exc}") from exc

    async def close(self) -> None:
        return None

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

    def _collect_blocking(self) -> list[Reading]:
        readings = [self._reading(UP_CHECK, 1, "bool")]
        cpu = self._sample_cpu()
        if cpu is not None:
            readings.append(self._reading("cpu_percent", cpu, "percent", 100))
        memory = parse_meminfo((self.procfs / "meminfo").read_text())
        readings.append(self._reading("memory_percent", memory, "percent", 100))
        load1 = float((self.procfs / "loadavg").read_text().split()[0])
        readings.append(self._reading("load1", load1, "load", self._cpus or 1))
        readings.extend(self._network())
        readings.extend(self._disks())
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

    def _disks(self) -> list[Reading]:
        readings: list[Reading] = []
        for mount in parse_mounts(self._host_view("mounts").read_text()):
            path = self.rootfs / mount.mountpoint.lstrip("/")
            try:
                usage = psutil.disk_usage(str(path))
            except OSError:
                continue  # unmounted since the table was read, or hidden from this view
            if usage.total == 0:
                continue
            labels = {"device": mount.device, "fstype": mount.fstype}
            readings.append(
                Reading(
                    SOURCE, mount.mountpoint, "disk_percent", usage.percent, "percent", 100, labels
                )
            )
        return readings
