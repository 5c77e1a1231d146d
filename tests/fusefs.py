"""A FUSE filesystem of one empty directory whose `statfs` answers 75 % used, run as a process
of its own (`python -m tests.fusefs MOUNTPOINT`) so that a test can SIGSTOP it: then every request
to the mount waits, as on a hung NFS server. Its device is `poolwatch-test-fuse`, so it is
watched only by what decides by filesystem type, not by a device path."""

from __future__ import annotations

import errno
import stat
import sys
from typing import Any

import mfusepy

BLOCKS, FREE = 1000, 250
FSNAME = "poolwatch-test-fuse"


class OneDirectory(mfusepy.Operations):
    use_ns = True  # nanosecond times: the float API is deprecated

    def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
        if path != "/":
            raise mfusepy.FuseOSError(errno.ENOENT)
        return {"st_mode": stat.S_IFDIR | 0o755, "st_nlink": 2}

    def readdir(self, path: str, fh: int) -> list[str]:
        return [".", ".."]

    def statfs(self, path: str) -> dict[str, int]:
        return {
            "f_bsize": 4096,
            "f_frsize": 4096,
            "f_blocks": BLOCKS,
            "f_bfree": FREE,
            "f_bavail": FREE,
            "f_namemax": 255,
        }


if __name__ == "__main__":
    mfusepy.FUSE(OneDirectory(), sys.argv[1], foreground=True, fsname=FSNAME, allow_other=True)
