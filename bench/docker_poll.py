"""Benchmark one Docker poll at 0, 50 and 200 running containers; prints a Markdown table.

    .venv/bin/python bench/docker_poll.py                  # cgroup files (the default path)
    .venv/bin/python bench/docker_poll.py --stats api      # the Engine API fallback

Runs the real collector with its event stream subscribed (the daemon's steady state: inspect only
for what changed). Per poll: wall time, CPU seconds of this process (poolwatch) and of dockerd
(from /proc/<pid>/stat; dockerd is shared, so other activity on the engine counts too). The
first ("cold") poll inspects every container and is shown apart. Containers are busybox `sleep`
with `--network none`, named `poolwatch-bench-*`, and are removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from poolwatch.config import load as config
from poolwatch.core.model import Reading
from poolwatch.sources.docker.collector import DockerCollector

IMAGE = "poolwatch-test/busybox:latest"
PREFIX = "poolwatch-bench-"


def docker(*args: str) -> str:
    done = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=120, check=True
    )
    return done.stdout.strip()


def scale_to(count: int) -> None:
    existing = set(docker("ps", "-aq", "--filter", f"name=^{PREFIX}").split())
    names = [f"{PREFIX}{i:03d}" for i in range(len(existing), count)]

    def run(name: str) -> None:
        docker("run", "-d", "--network", "none", "--label", "poolwatch-bench=1",
               "--name", name, IMAGE, "sleep", "86400")  # fmt: skip

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(run, names))


def remove_all() -> None:
    ids = docker("ps", "-aq", "--filter", "label=poolwatch-bench=1").split()
    if ids:
        docker("rm", "-f", *ids)


def dockerd_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(count: int, stats: str, polls: int, pid: int) -> dict[str, float]:
    base = config.load(env={}).docker
    docker_config = base.model_copy(
        update={"enabled": "on", "stats": stats, "include": [PREFIX + "*"], "timeout": 120.0}
    )
    collector = DockerCollector(docker_config)

    async def ignore(_readings: object) -> None:
        return None

    watch = asyncio.create_task(collector.watch(ignore))
    try:
        async with asyncio.timeout(30):
            await collector.connected.wait()
        started = time.perf_counter()
        readings: list[Reading] = list(await collector.collect())
        cold = time.perf_counter() - started
        walls: list[float] = []
        cpu0, dockerd0 = time.process_time(), dockerd_cpu(pid)
        for _ in range(polls):
            started = time.perf_counter()
            readings = list(await collector.collect())
            walls.append(time.perf_counter() - started)
        cpu, dockerd = time.process_time() - cpu0, dockerd_cpu(pid) - dockerd0
        seen = {r.instance for r in readings if r.check == "cpu_percent"}
        assert len(seen) == count, f"expected {count} containers with CPU %, got {len(seen)}"
        return {
            "cold": cold,
            "wall": statistics.median(walls),
            "worst": max(walls),
            "cpu": cpu / polls,
            "dockerd": dockerd / polls,
        }
    finally:
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watch
        await collector.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stats", choices=("cgroup", "api"), default="cgroup")
    parser.add_argument("--counts", default="0,50,200")
    parser.add_argument("--polls", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="leave the containers running")
    args = parser.parse_args()
    pid = int(Path("/var/run/docker.pid").read_text())
    print(
        f"stats via {args.stats}, {args.polls} polls each, {os.cpu_count()} CPUs", file=sys.stderr
    )
    print("| containers | cold first poll (s) | wall per poll, median (s) | worst (s) "
          "| poolwatch CPU s/poll | dockerd CPU s/poll |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|")
    remove_all()
    try:
        for count in (int(c) for c in args.counts.split(",")):
            scale_to(count)
            row = asyncio.run(measure(count, args.stats, args.polls, pid))
            print(
                f"| {count} | {row['cold']:.3f} | {row['wall']:.3f} | {row['worst']:.3f} "
                f"| {row['cpu']:.3f} | {row['dockerd']:.3f} |",
                flush=True,
            )
    finally:
        if not args.keep:
            remove_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
