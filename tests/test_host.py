"""Host source: against a prepared /proc tree (what a container sees at /host/proc) and against
this machine's real one."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import psutil
import pytest

from poolwatch.config.load import load
from poolwatch.core.model import Reading
from poolwatch.sources import SourceError
from poolwatch.sources.host.collector import HostCollector, parse_net_dev
from poolwatch.sources.host.mounts import one_per_filesystem, parse_mountinfo, watched
from poolwatch.sources.host.name import host_name
from poolwatch.sources.host.readings import CHECKS
from tests.readme import documented_checks

MOUNTINFO = """\
27 1 254:1 / / rw,relatime - ext4 /dev/vda1 rw
28 27 0:22 / /proc rw,nosuid - proc proc rw
29 27 0:50 / /var/lib/docker/overlay2/x/merged rw - overlay overlay rw
30 27 0:24 / /run rw - tmpfs tmpfs rw
31 27 254:1 /var/lib/docker /var/lib/docker rw,relatime - ext4 /dev/vda1 rw
32 27 254:16 / /srv/with\\040space rw - xfs /dev/vdb rw
33 27 7:0 / /snap/core/1 ro - squashfs /dev/loop0 ro
"""

NET_DEV = """\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets ...
    lo: {lo} 10 0 0 0 0 0 0 {lo} 10 0 0 0 0 0 0
  eth0: {rx} 10 0 0 0 0 0 0 {tx} 10 0 0 0 0 0 0
"""


def stat_line(busy: int, idle: int) -> str:
    # user nice system idle iowait irq softirq steal guest guest_nice
    return f"cpu  {busy} 0 0 {idle} 0 0 0 0 0 0\ncpu0 {busy} 0 0 {idle} 0 0 0 0 0 0\n"


def meminfo(total_kb: int, available_kb: int) -> str:
    text = Path("/proc/meminfo").read_text()
    text = re.sub(r"^MemTotal:.*$", f"MemTotal: {total_kb} kB", text, flags=re.M)
    return re.sub(r"^MemAvailable:.*$", f"MemAvailable: {available_kb} kB", text, flags=re.M)


@pytest.fixture
def host_tree(tmp_path: Path) -> tuple[Path, Path]:
    """A host's /proc and / as a container would see them mounted."""
    procfs, rootfs = tmp_path / "proc", tmp_path / "root"
    (procfs / "1" / "net").mkdir(parents=True)
    (procfs / "stat").write_text(stat_line(busy=100, idle=900))
    (procfs / "meminfo").write_text(meminfo(total_kb=1000, available_kb=250))
    (procfs / "loadavg").write_text("3.50 2.00 1.00 2/300 4242\n")
    (procfs / "1" / "mountinfo").write_text(MOUNTINFO)
    (procfs / "1" / "net" / "dev").write_text(NET_DEV.format(lo=5, rx=1000, tx=2000))
    (rootfs / "srv" / "with space").mkdir(parents=True)
    return procfs, rootfs


def by_check(readings: list[Reading]) -> dict[str, list[Reading]]:
    out: dict[str, list[Reading]] = {}
    for reading in readings:
        out.setdefault(reading.check, []).append(reading)
    return out


def test_mountinfo_keeps_real_filesystems_once() -> None:
    mounts = one_per_filesystem(m for m in parse_mountinfo(MOUNTINFO) if watched(m, network=False))
    assert [(m.mountpoint, m.fstype) for m in mounts] == [("/", "ext4"), ("/srv/with space", "xfs")]


def test_parse_net_dev_skips_loopback() -> None:
    assert parse_net_dev(NET_DEV.format(lo=999, rx=10, tx=20)) == (10, 20)


async def test_reads_the_host_through_mounted_procfs_and_rootfs(
    host_tree: tuple[Path, Path],
) -> None:
    procfs, rootfs = host_tree
    config = load(None, {"POOLWATCH_PROCFS": str(procfs), "POOLWATCH_ROOTFS": str(rootfs)})
    collector = HostCollector(config.host, instance="box")
    first = by_check(list(await collector.collect()))
    assert first["up"][0].value == 1
    assert first["memory_percent"][0].value == 75.0  # (total - available) / total
    assert (first["load1"][0].value, first["load1"][0].limit) == (3.5, 1)  # one cpuN line

    # the next poll sees 30 busy jiffies of 100, and 500 B received / 1000 B sent
    (procfs / "stat").write_text(stat_line(busy=130, idle=970))
    (procfs / "1" / "net" / "dev").write_text(NET_DEV.format(lo=5, rx=1500, tx=3000))
    second = by_check(list(await collector.collect()))
    assert second["cpu_percent"][0].value == pytest.approx(30.0)
    assert second["cpu_percent"][0].limit == 100
    assert second["network_receive_bytes_per_second"][0].value > 0
    ratio = (
        second["network_transmit_bytes_per_second"][0].value
        / second["network_receive_bytes_per_second"][0].value
    )
    assert ratio == pytest.approx(2.0)

    disks = {r.instance: r for r in second["disk_percent"]}
    assert set(disks) == {"/", "/srv/with space"}  # the host's mounts, not this process's
    assert disks["/"].labels == {"device": "/dev/vda1", "fstype": "ext4"}
    assert disks["/"].value == pytest.approx(psutil.disk_usage(str(rootfs)).percent, abs=0.5)


async def test_a_mount_that_comes_or_goes_is_seen_on_the_next_poll(
    host_tree: tuple[Path, Path],
) -> None:
    """The mount table is parsed again only when it changed: a change is still the next poll's."""
    procfs, rootfs = host_tree
    (rootfs / "data").mkdir()
    collector = HostCollector(
        load(None, {"POOLWATCH_PROCFS": str(procfs), "POOLWATCH_ROOTFS": str(rootfs)}).host
    )

    async def disks() -> set[str]:
        return {r.instance for r in await collector.collect() if r.check == "disk_percent"}

    assert await disks() == {"/", "/srv/with space"}
    assert await disks() == {"/", "/srv/with space"}  # unchanged table, the same mounts
    mountinfo = procfs / "1" / "mountinfo"
    mountinfo.write_text(MOUNTINFO + "34 27 254:32 / /data rw - ext4 /dev/vdc rw\n")
    assert await disks() == {"/", "/srv/with space", "/data"}
    mountinfo.write_text(MOUNTINFO)
    assert await disks() == {"/", "/srv/with space"}


async def test_two_collectors_read_two_procfs_trees(host_tree: tuple[Path, Path]) -> None:
    """No process-wide procfs path: a collector of the real /proc next to one of a mounted
    tree each read their own (psutil's PROCFS_PATH used to be set by whichever came last)."""
    procfs, rootfs = host_tree
    mounted = HostCollector(
        load(None, {"POOLWATCH_PROCFS": str(procfs), "POOLWATCH_ROOTFS": str(rootfs)}).host,
        instance="box",
    )
    real = HostCollector(load(None, {}).host)
    tree = by_check(list(await mounted.collect()))
    here = by_check(list(await real.collect()))
    assert tree["memory_percent"][0].value == 75.0
    assert here["memory_percent"][0].value == pytest.approx(psutil.virtual_memory().percent, abs=5)
    assert here["load1"][0].limit == psutil.cpu_count()


async def test_unreadable_procfs_is_a_source_error(tmp_path: Path) -> None:
    config = load(None, {"POOLWATCH_PROCFS": str(tmp_path / "missing")})
    collector = HostCollector(config.host)
    with pytest.raises(SourceError, match="missing"):
        await collector.collect()


async def test_real_host_emits_every_documented_check() -> None:
    collector = HostCollector(load(None, {}).host)
    readings = list(await collector.collect())
    assert {r.check for r in readings} == set(CHECKS)
    values = by_check(readings)
    assert 0 <= values["cpu_percent"][0].value <= 100
    assert values["memory_percent"][0].value == pytest.approx(
        psutil.virtual_memory().percent, abs=5
    )


def test_readme_documents_exactly_the_host_checks() -> None:
    assert documented_checks("docs/sources/host.md") == list(CHECKS)


def test_host_name_comes_from_the_mounted_host(tmp_path: Path) -> None:
    """In a container the events must name the host, not the container's id."""
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "hostname").write_text("matrixon-db-1\n")
    assert host_name(tmp_path) == "matrixon-db-1"
    assert host_name(tmp_path / "nothing-mounted") == socket.gethostname()
    assert host_name(Path("/")) == socket.gethostname()
