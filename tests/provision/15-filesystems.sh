#!/usr/bin/env bash
# The host disk tests (tests/test_host_disks.py) mount real filesystems on loop devices (ext4,
# xfs, btrfs) and a FUSE filesystem (tests/fusefs.py, through libfuse2).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need_packages e2fsprogs xfsprogs btrfs-progs fuse libfuse2 util-linux
