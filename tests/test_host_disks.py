"""Host disks against real filesystems: loop-device ext4, xfs and btrfs, a bind mount, a tmpfs,
and a FUSE filesystem whose process is SIGSTOPped (a hung mount). ZFS, NFS and CIFS, which this
machine cannot mount, from a recorded mount table. Needs root (CI runs as root)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
import pytest

from poolwatch.config.load import ConfigError, load
from poolwatch.core.model import Reading
from poolwatch.sources.host.collector import HostCollector
from poolwatch.sources.host.mounts import one_per_filesystem, parse_mountinfo, watched
from poolwatch.sources.host.probe import Answer, Prober, Unavailable, Usage
from tests.daemon import BASE_ENV, Daemon
from tests.eventually import eventually, eventually_sync
from tests.fusefs import FSNAME

REPO = Path(__file__).resolve().parent.parent
FUSECTL = Path("/sys/fs/fuse/connections")
LEVELS = ("WARNING", "CRITICAL")

# recorded from a ZFS-on-root host with NFS and SMB shares, a bind mount and btrfs subvolumes
MOUNTINFO = """\
22 1 0:21 / / rw,relatime shared:1 - zfs rpool/ROOT/debian rw,xattr,noacl
23 22 0:22 / /proc rw,nosuid shared:5 - proc proc rw
24 22 0:23 / /home rw,relatime shared:2 - zfs rpool/home rw,xattr,noacl
25 22 0:24 / /run rw,nosuid shared:6 - tmpfs tmpfs rw,size=1600k
26 22 8:1 / /boot/efi rw,relatime shared:3 - vfat /dev/sda1 rw
27 22 8:2 / /srv/with\\040space rw,relatime shared:4 - ext4 /dev/sda2 rw
28 22 8:2 /data /var/lib/data rw,relatime shared:4 - ext4 /dev/sda2 rw
29 22 0:40 /@snap /mnt/snap rw shared:7 - btrfs /dev/sdb rw,subvol=/@snap
30 22 0:40 / /mnt/pool rw shared:8 - btrfs /dev/sdb rw,subvol=/
31 22 0:41 / /mnt/nfs rw shared:9 - nfs4 files:/export rw,vers=4.2
32 22 0:42 / /mnt/share rw shared:10 - cifs //files/share rw,vers=3.1.1
33 22 0:43 / /mnt/sshfs rw shared:11 - fuse.sshfs me@files:/ rw
34 22 0:44 / /var/lib/docker/overlay2/x/merged rw - overlay overlay rw
35 22 7:0 / /snap/core/1 ro - squashfs /dev/loop0 ro
"""


def chosen(network: bool = False, include: tuple[str, ...] = (), exclude: tuple[str, ...] = ()):
    mounts = parse_mountinfo(MOUNTINFO)
    kept = [m for m in mounts if watched(m, network=network, include=include, exclude=exclude)]
    return {m.mountpoint: (m.device, m.fstype) for m in one_per_filesystem(kept)}


def test_filesystem_type_decides_not_the_device_name() -> None:
    """ZFS datasets (no `/dev` device) are watched; network mounts are not, by default."""
    assert chosen() == {
        "/": ("rpool/ROOT/debian", "zfs"),
        "/home": ("rpool/home", "zfs"),
        "/boot/efi": ("/dev/sda1", "vfat"),
        "/srv/with space": ("/dev/sda2", "ext4"),  # its bind mount at /var/lib/data is the same
        "/mnt/pool": ("/dev/sdb", "btrfs"),  # the whole filesystem, not its subvolume
    }


def test_network_switch_adds_nfs_smb_and_fuse() -> None:
    added = set(chosen(network=True)) - set(chosen())
    assert added == {"/mnt/nfs", "/mnt/share", "/mnt/sshfs"}


def test_include_adds_and_exclude_wins() -> None:
    assert set(chosen(include=("tmpfs", "/mnt/nfs"))) - set(chosen()) == {"/run", "/mnt/nfs"}
    assert "/home" not in chosen(exclude=("/home",))
    assert not {"/", "/home"} & set(chosen(include=("zfs",), exclude=("zfs",)))
    assert "/mnt/sshfs" not in chosen(network=True, exclude=("fuse.*",))
    # exclude names mount points: the other mount of the same filesystem stands in for it
    assert chosen(exclude=("/srv/*",))["/var/lib/data"] == ("/dev/sda2", "ext4")


def test_disk_network_variable() -> None:
    assert load(None, {}).host.disks.network is False
    assert load(None, {"POOLWATCH_DISK_NETWORK": "on"}).host.disks.network is True
    assert load(None, {"POOLWATCH_DISK_NETWORK": "off"}).host.disks.network is False
    with pytest.raises(ConfigError, match="POOLWATCH_DISK_NETWORK"):
        load(None, {"POOLWATCH_DISK_NETWORK": "sometimes"})


def test_disk_timeout_must_leave_room_in_the_poll(tmp_path: Path) -> None:
    path = tmp_path / "poolwatch.yaml"
    path.write_text("host:\n  timeout: 2s\n  disks:\n    timeout: 2s\n")
    with pytest.raises(ConfigError, match=r"disks\.timeout 2s must be shorter"):
        load(path, {})


# --- real filesystems ----------------------------------------------------------------------------


def run(*argv: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{' '.join(argv)}: {done.stderr.strip()}"


def mounted_at(path: Path) -> str | None:
    """The filesystem (`major:minor`) mounted at a path, from mountinfo: touches no mount."""
    for mount in parse_mountinfo(Path("/proc/self/mountinfo").read_text()):
        if mount.mountpoint == str(path):
            return mount.filesystem
    return None


@pytest.fixture
def mounts() -> Iterator[list[Path]]:
    """Mount points to unmount at the end, last first, whatever happened."""
    if os.geteuid() != 0:
        pytest.fail("mounting test filesystems needs root (CI runs as root)")
    done: list[Path] = []
    yield done
    for path in reversed(done):
        if subprocess.run(["umount", str(path)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], check=False)


def loop_filesystem(tmp_path: Path, mounts: list[Path], fstype: str, *mkfs: str) -> Path:
    image, target = tmp_path / f"{fstype}.img", tmp_path / fstype
    with image.open("wb") as f:
        f.truncate(320 * 1024 * 1024)  # sparse; xfs wants at least 300 MB
    run(*mkfs, str(image))
    target.mkdir()
    run("mount", "-t", fstype, "-o", "loop", str(image), str(target))
    mounts.append(target)
    return target


@pytest.fixture
def filesystems(tmp_path: Path, mounts: list[Path]) -> dict[str, Path]:
    """ext4 with a bind mount of a directory of it, xfs, btrfs with a subvolume mounted on its
    own, and a tmpfs."""
    ext4 = loop_filesystem(tmp_path, mounts, "ext4", "mkfs.ext4", "-q", "-F")
    xfs = loop_filesystem(tmp_path, mounts, "xfs", "mkfs.xfs", "-q", "-f")
    btrfs = loop_filesystem(tmp_path, mounts, "btrfs", "mkfs.btrfs", "-q", "-f")
    (ext4 / "data").mkdir()
    (ext4 / "data" / "blob").write_bytes(os.urandom(8 * 1024 * 1024))  # not 0 % used
    paths = {"ext4": ext4, "xfs": xfs, "btrfs": btrfs}
    for name in ("bind", "subvolume", "tmpfs"):
        paths[name] = tmp_path / name
        paths[name].mkdir()
    run("mount", "--bind", str(ext4 / "data"), str(paths["bind"]))
    mounts.append(paths["bind"])
    run("btrfs", "subvolume", "create", str(btrfs / "sub"))
    run("mount", "-o", "subvol=sub", str(tmp_path / "btrfs.img"), str(paths["subvolume"]))
    mounts.append(paths["subvolume"])
    run("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(paths["tmpfs"]))
    mounts.append(paths["tmpfs"])
    return paths


def under(readings: list[Reading], check: str, root: Path) -> dict[str, Reading]:
    inside = f"{root}/"
    return {r.instance: r for r in readings if r.check == check and r.instance.startswith(inside)}


async def test_real_filesystems_one_reading_each(
    tmp_path: Path, filesystems: dict[str, Path]
) -> None:
    # stat gives the subvolume a device of its own; mountinfo knows it is the same filesystem
    assert os.stat(filesystems["subvolume"]).st_dev != os.stat(filesystems["btrfs"]).st_dev
    collector = HostCollector(load(None, {}).host)
    try:
        readings = list(await collector.collect())
    finally:
        await collector.close()
    expected = {str(filesystems[name]) for name in ("ext4", "xfs", "btrfs")}
    percent = under(readings, "disk_percent", tmp_path)
    assert set(percent) == expected  # no bind mount, subvolume or tmpfs
    assert set(under(readings, "disk_up", tmp_path)) == expected
    assert all(r.value == 1 for r in under(readings, "disk_up", tmp_path).values())
    for name in ("ext4", "xfs", "btrfs"):
        reading = percent[str(filesystems[name])]
        assert reading.labels["fstype"] == name
        assert reading.labels["device"].startswith("/dev/loop")
        assert reading.value == pytest.approx(
            psutil.disk_usage(str(filesystems[name])).percent, abs=0.5
        )
    assert percent[str(filesystems["ext4"])].value > 0


async def test_include_and_exclude_on_real_mounts(
    tmp_path: Path, filesystems: dict[str, Path]
) -> None:
    config = tmp_path / "poolwatch.yaml"
    config.write_text(
        "host:\n  disks:\n"
        f"    include: ['{filesystems['tmpfs']}']\n"
        f"    exclude: [xfs, '{filesystems['ext4']}']\n"
    )
    collector = HostCollector(load(config, {}).host)
    try:
        readings = list(await collector.collect())
    finally:
        await collector.close()
    percent = under(readings, "disk_percent", tmp_path)
    # ext4 is still watched, at the mount of it that was not excluded
    assert set(percent) == {str(filesystems[n]) for n in ("btrfs", "tmpfs", "bind")}
    assert percent[str(filesystems["bind"])].labels["fstype"] == "ext4"


# --- a hung FUSE mount ---------------------------------------------------------------------------


def state(task: Path) -> str:
    """A thread's state letter from its `stat` (the field after the parenthesised name)."""
    return (task / "stat").read_text().rpartition(")")[2].split()[0]


class Fuse:
    """tests/fusefs.py mounted at `path`, in a process of its own that can be stopped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fusefs", str(path)],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            filesystem = eventually_sync(
                self._mounted, "the FUSE test filesystem mounted", 30, 0.05
            )
        except AssertionError:
            self.close()
            pytest.fail(f"the FUSE test filesystem did not mount: {self.stderr()}")
        major, minor = (int(n) for n in filesystem.split(":"))
        self.connection = FUSECTL / str((major << 20) | minor)

    def _mounted(self) -> str | None:
        """Its filesystem's device number once mounted; the wait ends if the process exits."""
        if self.proc.poll() is not None:
            raise AssertionError("the FUSE process exited")
        return mounted_at(self.path)

    def stderr(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None:
            return ""
        return self.proc.stderr.read().decode(errors="replace")

    def waiting(self) -> int:
        """Requests the kernel holds for the FUSE process: each probe of the mount adds one."""
        return int((self.connection / "waiting").read_text())

    def stop(self) -> None:
        """SIGSTOP, and wait until every thread of it is stopped: a thread still running could
        take one more request."""
        self.proc.send_signal(signal.SIGSTOP)
        tasks = Path(f"/proc/{self.proc.pid}/task")
        eventually_sync(
            lambda: all(state(task) == "T" for task in tasks.iterdir()),
            "the FUSE process stopped, every thread of it",
            30,
            0.01,
        )

    def cont(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def resume(self) -> None:
        """SIGCONT, and wait until the process has answered what waited for it."""
        self.cont()
        eventually_sync(lambda: self.waiting() == 0, "the FUSE process answered", 30, 0.05)

    def close(self) -> None:
        self.cont()
        self.proc.terminate()  # the process unmounts on SIGTERM
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if mounted_at(self.path) is not None:
            subprocess.run(["umount", "-l", str(self.path)], check=False)
        if self.proc.stderr is not None:
            self.proc.stderr.close()


@pytest.fixture
def fusectl() -> Iterator[None]:
    """The fuse control filesystem, which counts the requests a FUSE process has not answered."""
    if os.geteuid() != 0:
        pytest.fail("mounting test filesystems needs root (CI runs as root)")
    ours = mounted_at(FUSECTL) is None
    if ours:
        run("mount", "-t", "fusectl", "fusectl", str(FUSECTL))
    yield
    if ours:
        subprocess.run(["umount", str(FUSECTL)], check=False)


@pytest.fixture
def hung_fuse(tmp_path: Path, fusectl: None) -> Iterator[Fuse]:
    """A FUSE mount whose process is stopped: every request to it waits until SIGCONT."""
    path = tmp_path / "fuse"
    path.mkdir()
    fuse = Fuse(path)
    try:
        fuse.stop()
        yield fuse
    finally:
        fuse.close()


class NoDefaultExecutor(ThreadPoolExecutor):
    """The loop's default executor serves name resolution; the host source must leave it be."""

    def submit(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the host source used the loop's default executor")


def of(readings: list[Reading], check: str, instance: str) -> Reading:
    found = [r for r in readings if r.check == check and r.instance == instance]
    assert len(found) == 1, f"{check} of {instance}: {found}"
    return found[0]


def has(readings: list[Reading], check: str, instance: str) -> bool:
    return any(r.check == check and r.instance == instance for r in readings)


async def test_hung_mount_is_reported_alone_and_probed_once(hung_fuse: Fuse) -> None:
    asyncio.get_running_loop().set_default_executor(NoDefaultExecutor(max_workers=1))
    mount = str(hung_fuse.path)
    collector = HostCollector(load(None, {"POOLWATCH_DISK_NETWORK": "on"}).host)
    try:
        first = list(await collector.collect())
        up = of(first, "disk_up", mount)
        assert (up.value, up.message) == (0, "statvfs did not answer within 2s")
        assert dict(up.labels) == {"device": FSNAME, "fstype": "fuse"}
        assert not has(first, "disk_percent", mount)
        # everything else is read: the host is up, other disks are measured
        assert of(first, "up", collector.instance).value == 1
        assert {"memory_percent", "load1", "disk_percent"} <= {r.check for r in first}
        assert collector.last_poll_partial  # its other alerts are not "no longer reported"
        probes = hung_fuse.waiting()
        assert probes >= 1

        still = of(list(await collector.collect()), "disk_up", mount)
        assert still.value == 0
        assert "not asked again until it does" in str(still.message)
        assert hung_fuse.waiting() == probes  # no second probe while the first is stuck

        hung_fuse.resume()

        async def measured() -> list[Reading] | None:
            readings = list(await collector.collect())
            return readings if of(readings, "disk_up", mount).value == 1 else None

        # the stuck thread returns a moment after the FUSE process answered; poll until then
        third = await eventually(measured, "the mount measured again", 30, 0.1)
        assert (of(third, "disk_up", mount).value, of(third, "disk_up", mount).message) == (1, None)
        assert of(third, "disk_percent", mount).value == 75.0  # what tests/fusefs.py answers
        assert not collector.last_poll_partial
    finally:
        await collector.close()


async def test_network_off_never_touches_a_fuse_mount(hung_fuse: Fuse) -> None:
    collector = HostCollector(load(None, {}).host)
    try:
        readings = list(await collector.collect())
    finally:
        await collector.close()
    assert not [r for r in readings if r.instance == str(hung_fuse.path)]
    assert hung_fuse.waiting() == 0  # not a single request reached the mount
    assert {r.check for r in readings} >= {"up", "disk_up", "disk_percent"}


async def test_a_dead_fuse_mount_is_down_with_the_reason(hung_fuse: Fuse) -> None:
    """A FUSE process that died leaves its mount behind: statvfs fails at once, and says why."""
    hung_fuse.cont()
    hung_fuse.proc.kill()
    hung_fuse.proc.wait()
    collector = HostCollector(load(None, {"POOLWATCH_DISK_NETWORK": "on"}).host)
    try:
        readings = list(await collector.collect())
    finally:
        await collector.close()
    up = of(readings, "disk_up", str(hung_fuse.path))
    assert (up.value, up.message) == (0, "statvfs failed: Transport endpoint is not connected")


async def test_probes_are_bounded(hung_fuse: Fuse, tmp_path: Path) -> None:
    """With every thread held by a hung mount, the other filesystems wait for none: they are
    reported as not measured, and no thread beyond the limit is started."""
    before = set(threading.enumerate())
    prober = Prober(timeout=0.5, threads=1)
    try:
        answers = await prober.measure({"hung": str(hung_fuse.path), "fine": str(tmp_path)})
        assert answers == {
            "hung": Unavailable("statvfs did not answer within 500ms"),
            "fine": Unavailable(
                "not measured: all 1 statvfs threads are waiting on filesystems that do not answer"
            ),
        }
        probes = [t for t in set(threading.enumerate()) - before if t.name.startswith("poolwatch-")]
        assert len(probes) == 1
        assert probes[0].daemon
        hung_fuse.resume()

        async def answered() -> dict[str, Answer] | None:
            found = await prober.measure({"hung": str(hung_fuse.path), "fine": str(tmp_path)})
            return None if isinstance(found["hung"], Unavailable) else found

        # the held thread returns once the filesystem answers again; a bound, not a timing
        answers = await eventually(answered, "the hung filesystem measured again", 30, 0.1)
        assert answers["hung"] == Usage(75.0, 4096 * 1000)
        assert isinstance(answers["fine"], Usage)
    finally:
        prober.close()


def once(env: dict[str, str]) -> tuple[int, list[dict[str, Any]]]:
    # every threshold off but the up checks: the exit code says whether something is down
    quiet = {f"{name}_{level}": "off" for name in ("CPU", "MEMORY", "DISK") for level in LEVELS}
    done = subprocess.run(
        [sys.executable, "-m", "poolwatch", "--once", "--format", "json"],
        env={**BASE_ENV, **quiet, **env},
        capture_output=True,
        text=True,
        timeout=60,  # main never exited here: a hang fails the test
        check=False,
    )
    return done.returncode, [json.loads(line) for line in done.stdout.splitlines()]


def test_once_with_a_hung_mount_reports_it_and_exits(hung_fuse: Fuse) -> None:
    code, results = once({"POOLWATCH_DISK_NETWORK": "on"})
    host = next(r for r in results if r["check"] == "up")
    assert (host["value"], host["severity"]) == (1, "ok")  # not HostStatsUnavailable
    hung = [r for r in results if r["instance"] == str(hung_fuse.path)]
    assert [(r["check"], r["value"], r["severity"], r.get("alert")) for r in hung] == [
        ("disk_up", 0, "critical", "DiskUnavailable")
    ]
    assert "down (statvfs did not answer within 2s)" in hung[0]["message"]
    assert any(r["check"] == "disk_percent" and r["instance"] == "/" for r in results)
    assert code == 2

    code, results = once({})
    assert not [r for r in results if r["instance"] == str(hung_fuse.path)]
    assert hung_fuse.waiting() == 0
    assert code == 0


def test_daemon_stops_on_sigterm_while_a_mount_hangs(hung_fuse: Fuse) -> None:
    env = {"POOLWATCH_DISK_NETWORK": "on", "POOLWATCH_INTERVAL": "1s"}
    with Daemon(env) as daemon:
        fired = daemon.wait_for(
            lambda line: (
                line.get("event") == "alert_firing" and line.get("instance") == str(hung_fuse.path)
            )
        )
        assert fired["alert"] == "DiskUnavailable"
        assert fired["check"] == "disk_up"
        daemon.proc.send_signal(signal.SIGTERM)
        code = daemon.proc.wait(timeout=30)  # a thread stuck in statvfs must not hold up exit
        daemon.wait_for(lambda line: line.get("event") == "stopped")
    assert code == 0
    assert not [line for line in daemon.lines if line.get("alert") == "HostStatsUnavailable"]
    assert not [line for line in daemon.lines if line.get("event") == "collection_failed"]
