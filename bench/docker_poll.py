"""Benchmark the Docker source at 0, 50 and 200 running containers; prints a Markdown table.

    .venv/bin/python bench/docker_poll.py                  # cgroup files (the default path)
    .venv/bin/python bench/docker_poll.py --stats api      # the Engine API fallback
    .venv/bin/python bench/docker_poll.py --once --counts 0,200   # `poolwatch --once`, cold

Polls: runs the real collector with its event stream subscribed (the daemon's steady state:
inspect only for what changed). Per poll: wall time, CPU seconds of this process (poolwatch) and
of dockerd (from /proc/<pid>/stat; dockerd is shared, so other activity on the engine counts
too). The first ("cold") poll inspects every container and is shown apart.

`--once`: `poolwatch --once --format json` as a new process (start-up, imports, config, one cold
poll, output, exit), the Docker source only (`host.enabled: false`, `include` this run's
containers), after one warm-up run that writes the bytecode caches an installed package has.

Containers are busybox `sleep` with `--network none`, named `poolwatch-bench-poll-<pid>-*` and
labelled with this run, so that another benchmark on the same engine is never counted or
removed; they are removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from poolwatch.config import load as config
from poolwatch.core.model import Reading
from poolwatch.sources.docker.collector import DockerCollector

IMAGE = "poolwatch-test/busybox:latest"
RUN = str(os.getpid())
PREFIX = f"poolwatch-bench-poll-{RUN}-"
LABEL = f"poolwatch-bench.poll={RUN}"


def docker(*args: str) -> str:
    done = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=120, check=True
    )
    return done.stdout.strip()


def scale_to(count: int) -> None:
    existing = set(docker("ps", "-aq", "--filter", f"label={LABEL}").split())
    names = [f"{PREFIX}{i:03d}" for i in range(len(existing), count)]

    def run(name: str) -> None:
        docker("run", "-d", "--network", "none", "--label", LABEL,
               "--name", name, IMAGE, "sleep", "86400")  # fmt: skip

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(run, names))


def remove_all() -> None:
    ids = docker("ps", "-aq", "--filter", f"label={LABEL}").split()
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


def once(count: int, runs: int) -> dict[str, float]:
    """`poolwatch --once` as a new process, `runs` times after one warm-up."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as config_file:
        config_file.write(
            f'host: {{enabled: false}}\ndocker: {{enabled: auto, include: ["{PREFIX}*"]}}\n'
        )
        config_file.flush()
        argv = [
            str(Path(sys.executable).with_name("poolwatch")),
            *("--config", config_file.name, "--once", "--format", "json"),
        ]
        walls: list[float] = []
        cpus: list[float] = []
        for run in range(runs + 1):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
            wall = time.perf_counter() - started
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            seen = {
                line["instance"]
                for line in map(json.loads, done.stdout.splitlines())
                if line["check"] == "cpu_percent"
            }
            if done.returncode == 3 or len(seen) != count:
                why = done.stderr.strip()[-500:]
                raise SystemExit(
                    f"--once: exit {done.returncode}, {len(seen)} of {count} with a CPU %: {why}"
                )
            if run:  # the first run is the warm-up
                walls.append(wall)
                cpus.append(cpu)
    return {
        "wall": statistics.median(walls),
        "min": min(walls),
        "max": max(walls),
        "cpu": statistics.median(cpus),
    }


def load_average() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stats", choices=("cgroup", "api"), default="cgroup")
    parser.add_argument("--counts", default="0,50,200")
    parser.add_argument("--polls", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="leave the containers running")
    parser.add_argument("--once", action="store_true", help="`poolwatch --once`, cold")
    parser.add_argument("--runs", type=int, default=5, help="--once runs per count")
    args = parser.parse_args()
    if args.once:
        return main_once([int(c) for c in args.counts.split(",")], args.runs, args.keep)
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


def main_once(counts: list[int], runs: int, keep: bool) -> int:
    print(f"poolwatch --once, {runs} runs each after a warm-up, {os.cpu_count()} CPUs",
          file=sys.stderr)  # fmt: skip
    print("| containers | wall, median (s) | min (s) | max (s) | poolwatch CPU, median (s) "
          "| load average before (1/5/15 min) |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---|")
    remove_all()
    try:
        for count in counts:
            scale_to(count)
            load = load_average()
            row = once(count, runs)
            print(
                f"| {count} | {row['wall']:.3f} | {row['min']:.3f} | {row['max']:.3f} "
                f"| {row['cpu']:.3f} | {load} |",
                flush=True,
            )
    finally:
        if not keep:
            remove_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
