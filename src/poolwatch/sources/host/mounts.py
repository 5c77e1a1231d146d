"""Which mounts the host source measures: decided by filesystem type, one reading per filesystem.

The mount table is `/proc/<pid>/mountinfo`, not `mounts`: its `major:minor` names the filesystem
(bind mounts and btrfs subvolumes share it, though `stat` gives each subvolume a device of its
own), and reading it never sends a request to a filesystem, so a hung mount cannot stall it.

- local disk filesystems (ext4, xfs, btrfs, zfs, f2fs, ... and any type not named below): on;
- pseudo, virtual and image filesystems (`PSEUDO_FILESYSTEMS`): off, their usage means nothing;
- network and FUSE filesystems (`is_network`): behind `host.disks.network`, off by default,
  because their answer depends on a server or a process that may not give one;
- `include` adds mounts whatever their type, `exclude` removes mounts and wins: an entry that
  starts with `/` is a mount point glob, any other entry an fstype glob (`nfs*`, `fuse.*`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

PSEUDO_FILESYSTEMS = frozenset(
    (
        "autofs",
        "binfmt_misc",
        "bpf",
        "cgroup",
        "cgroup2",
        "configfs",
        "cramfs",
        "debugfs",
        "devpts",
        "devtmpfs",
        "efivarfs",
        "erofs",
        "fusectl",
        "fuse.gvfsd-fuse",
        "fuse.lxcfs",
        "fuse.portal",
        "fuse.snapfuse",
        "fuse.squashfuse",
        "hugetlbfs",
        "iso9660",
        "mqueue",
        "nfsd",
        "nsfs",
        "overlay",
        "aufs",
        "proc",
        "pstore",
        "ramfs",
        "romfs",
        "rootfs",
        "rpc_pipefs",
        "securityfs",
        "selinuxfs",
        "shm",
        "squashfs",
        "sysfs",
        "tmpfs",
        "tracefs",
        "udf",
    )
)
"""Filesystems that hold no user data or are read-only images; their "usage" means nothing."""

NETWORK_FILESYSTEMS = frozenset(
    (
        "9p",
        "afs",
        "beegfs",
        "ceph",
        "cifs",
        "coda",
        "davfs",
        "fuse",
        "fuseblk",
        "glusterfs",
        "gpfs",
        "lustre",
        "ncpfs",
        "orangefs",
        "smb3",
        "smbfs",
        "sshfs",
        "virtiofs",
    )
)
"""Filesystems served by another machine or by a process (FUSE): `statvfs` waits for them."""


@dataclass(frozen=True, slots=True)
class Mount:
    device: str
    mountpoint: str
    fstype: str
    filesystem: str
    """`major:minor`: the same for every mount of one filesystem."""
    root: str = "/"
    """The directory of the filesystem mounted here (`/` for the whole; a bind mount's subtree)."""


def _unescape(field: str) -> str:
    """The kernel escapes space, tab, newline and backslash as octal (`\\040`)."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def parse_mountinfo(text: str) -> list[Mount]:
    """Every mount of a `mountinfo` table, in its order (`man 5 proc`: fields, then ` - `,
    then fstype, source and super options)."""
    mounts: list[Mount] = []
    for line in text.splitlines():
        head, separator, tail = line.partition(" - ")
        fields, rest = head.split(), tail.split()
        if not separator or len(fields) < 5 or len(rest) < 2:
            continue
        fstype, device = _unescape(rest[0]), _unescape(rest[1])
        mounts.append(Mount(device, _unescape(fields[4]), fstype, fields[2], _unescape(fields[3])))
    return mounts


def is_network(fstype: str) -> bool:
    """NFS (`nfs`, `nfs4`), SMB, cluster filesystems and every FUSE filesystem (`fuse.*`)."""
    return fstype in NETWORK_FILESYSTEMS or fstype.startswith(("nfs", "fuse."))


def _matches(pattern: str, mount: Mount) -> bool:
    subject = mount.mountpoint if pattern.startswith("/") else mount.fstype
    return fnmatchcase(subject, pattern)


def watched(
    mount: Mount, *, network: bool, include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> bool:
    """Whether a mount is measured: exclude wins, include adds, then the type decides."""
    if any(_matches(p, mount) for p in exclude):
        return False
    if any(_matches(p, mount) for p in include):
        return True
    if mount.fstype in PSEUDO_FILESYSTEMS:
        return False
    return network or not is_network(mount.fstype)


def one_per_filesystem(mounts: Iterable[Mount]) -> list[Mount]:
    """One mount of each filesystem: the first that shows the whole of it (root `/`), else the
    first; in the table's order, so the same mount is chosen on every poll."""
    chosen: dict[str, Mount] = {}
    for mount in mounts:
        first = chosen.get(mount.filesystem)
        if first is None or (first.root != "/" and mount.root == "/"):
            chosen[mount.filesystem] = mount
    return list(chosen.values())
