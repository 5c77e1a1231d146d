"""CPU seconds and resident memory of processes, read from /proc (no psutil: the numbers are
the kernel's own counters, the same ones `ps` and `top` show).

A server's CPU is that of every process it is made of: PostgreSQL is the postmaster and its
children (backends that exited are in the postmaster's `cutime`/`cstime` once reaped), the Docker
engine is dockerd, its containerd and the containerd shims of its containers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")
DOCKER_PID_FILE = Path("/var/run/docker.pid")
ENGINE_SOCKET_DIR = "/var/run/docker/containerd/"


@dataclass(frozen=True, slots=True)
class Stat:
    pid: int
    comm: str
    ppid: int
    own: float
    """utime + stime, seconds."""
    reaped: float
    """cutime + cstime: children that exited and were waited for, seconds."""


def stat(pid: int) -> Stat | None:
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    comm = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    return Stat(pid, comm, int(fields[1]), (utime + stime) / TICK, (cutime + cstime) / TICK)


def all_stats() -> list[Stat]:
    stats = []
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (found := stat(int(entry.name))) is not None:
            stats.append(found)
    return stats


def cmdline(pid: int) -> str:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def rss_bytes(pid: int) -> int:
    for line in (PROC / str(pid) / "status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def process_cpu(pid: int) -> float:
    """CPU seconds of one live process (all its threads)."""
    found = stat(pid)
    if found is None:
        raise RuntimeError(f"process {pid} is gone")
    return found.own


def tree_cpu(root: int, stats: Iterable[Stat]) -> float:
    """A process, its live descendants, and what its reaped children used."""
    children: dict[int, list[Stat]] = {}
    by_pid = {}
    for s in stats:
        children.setdefault(s.ppid, []).append(s)
        by_pid[s.pid] = s
    top = by_pid.get(root)
    if top is None:
        raise RuntimeError(f"process {root} is gone")
    total, todo = top.own + top.reaped, list(children.get(root, []))
    while todo:
        s = todo.pop()
        total += s.own
        todo.extend(children.get(s.pid, []))
    return total


def docker_pid() -> int:
    return int(DOCKER_PID_FILE.read_text().strip())


def engine_cpu(stats: list[Stat]) -> float:
    """dockerd (the one of /var/run/docker.pid), its containerd, and that containerd's shims."""
    total = tree_cpu(docker_pid(), stats)
    for s in stats:
        if s.comm.startswith("containerd-shim") and ENGINE_SOCKET_DIR in cmdline(s.pid):
            total += s.own
    return total


@dataclass(frozen=True)
class Servers:
    """The servers a poller makes work: name → how to read their CPU seconds from a snapshot."""

    readers: dict[str, Callable[[list[Stat]], float]]

    def sample(self) -> dict[str, float]:
        stats = all_stats()
        return {name: read(stats) for name, read in self.readers.items()}


def delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {name: after[name] - before[name] for name in after}
