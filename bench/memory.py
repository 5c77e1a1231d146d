"""What the daemon's imports cost in resident memory, before it polls anything: VmRSS after each
step, in the order the daemon imports them, in a fresh interpreter run as the image runs it
(`MALLOC_ARENA_MAX` from the Dockerfile). Prints a Markdown table.

    .venv/bin/python -m bench.memory

Order matters (a module shared by two steps counts in the first): the steps follow the daemon's
own start, the config first, then the listener, the silence store and each source and sink.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from bench.goals import image_environment

STEPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("asyncio (and ssl)", ("asyncio",)),
    ("pydantic, the config models, structlog, PyYAML (poolwatch.cli)", ("poolwatch.cli",)),
    ("the daemon's runtime", ("poolwatch.runtime.daemon",)),
    ("the host source (psutil)", ("poolwatch.sources.host.collector",)),
    ("the /metrics listener (prometheus-client, h11)", ("poolwatch.runtime.listener",)),
    ("PostgreSQL (asyncpg)", ("poolwatch.sources.postgres.collector",)),
    ("Redis (redis-py)", ("poolwatch.sources.redis.collector",)),
    ("Docker (the Docker SDK, requests, urllib3)", ("poolwatch.sources.docker.collector",)),
    ("the webhook sink (httpx)", ("poolwatch.sinks.webhook.sink",)),
)

CHILD = """
import importlib, json, sys
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
steps = json.loads(sys.argv[1])
out = [("the interpreter", rss())]
for name, modules in steps:
    for module in modules:
        importlib.import_module(module)
    out.append((name, rss()))
print(json.dumps(out))
"""


def measure() -> list[tuple[str, int]]:
    env = os.environ | image_environment()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(STEPS)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return [(name, int(rss)) for name, rss in json.loads(done.stdout)]


def main() -> int:
    said = ", ".join(f"{k}={v}" for k, v in image_environment().items())
    print(f"VmRSS after each import step, one fresh interpreter, {said}, load average "
          + " / ".join(f"{x:.2f}" for x in os.getloadavg()))  # fmt: skip
    print("\n| step | adds (MiB) | VmRSS after it (MiB) |\n|---|---:|---:|")
    previous = 0
    for name, rss in measure():
        print(f"| {name} | {(rss - previous) / 2**20:+.1f} | {rss / 2**20:.1f} |")
        previous = rss
    return 0


if __name__ == "__main__":
    sys.exit(main())
