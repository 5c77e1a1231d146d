"""Issue 25's three cost goals, in one run beside the shell poller, as one table:

(a) CPU per poll with PostgreSQL, Redis, host and 50 containers: at most 1/20 of the shell
    poller's (both sides count the servers they make work, as the `cpu` rows do);
(b) resident memory at 50 containers: at most 60 MiB, the daemon run as the image runs it
    (`MALLOC_ARENA_MAX` from the Dockerfile);
(c) a cold `poolwatch --once` over 200 running containers, start-up included: at most 0.5 s,
    with where the start-up goes (the interpreter, then the imports by library).

The measurements are the harness's own: `measure.shell_cycles` and `measure.poolwatch_cycles`
for (a) and (b) (the same daemon: its CPU per window and its RSS at each window's end, over
fresh daemons), `--once` as a fresh process of the installed script for (c). Nothing asserts;
the verdict compares with the goal.
"""

from __future__ import annotations

import json
import re
import resource
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench import measure
from bench.measure import CycleCost, PgProbe
from bench.stack import CONTAINER_PREFIX, BenchError, Stack, poolwatch_command
from bench.stats import median

DOCKERFILE = Path(__file__).resolve().parents[1] / "Dockerfile"
CPU_SHARE = 1 / 20
RSS_MIB = 60.0
ONCE_SECONDS = 0.5


def image_environment(dockerfile: Path = DOCKERFILE) -> dict[str, str]:
    """What of the image's `ENV` changes how the Python process runs (the allocator's arenas),
    read from the Dockerfile so that the benchmark cannot drift from the image."""
    text = dockerfile.read_text().replace("\\\n", " ")
    found = dict(re.findall(r"\b(MALLOC_ARENA_MAX)=(\S+)", text))
    if not found:
        raise BenchError(f"{dockerfile}: no MALLOC_ARENA_MAX in the image's ENV")
    return found


# --- (a) and (b) --------------------------------------------------------------------------------


@dataclass
class Polling:
    shell: CycleCost
    poolwatch: CycleCost = field(default_factory=CycleCost)
    rss_last: list[int] = field(default_factory=list)
    """Each daemon's RSS at its last window's end."""
    seconds: float = 0.0
    """How long each daemon had run at that last sample."""

    def ratio(self) -> float:
        shell = median(self.shell.total())
        return median(self.poolwatch.total()) / shell if shell > 0 else float("inf")


def polling(
    stack: Stack,
    probe: PgProbe,
    env: dict[str, str],
    *,
    daemons: int,
    windows: int,
    window: float,
    idle: float,
    shell_reps: int,
) -> Polling:
    """The shell poller `shell_reps` times, then `daemons` fresh poolwatch daemons (`env`),
    each measured over `windows` windows; each daemon's RSS is taken at every window's end."""
    rates = measure.idle_rates(stack, idle)
    count = len(stack.containers.names)
    result = Polling(measure.shell_cycles(stack, probe, rates, shell_reps, count))
    for _ in range(daemons):
        cost = measure.poolwatch_cycles(
            stack, probe, rates, windows, window, 0.0, stack.poolwatch_env(interval="1s") | env
        )
        result.poolwatch.process += cost.process
        result.poolwatch.add_all(cost.servers)
        result.poolwatch.rss += cost.rss
        result.rss_last.append(cost.rss[-1])
        result.seconds = cost.ran
    return result


# --- (c) ----------------------------------------------------------------------------------------

CONFIG = "the config models (poolwatch.config, each plugin's settings: pydantic builds them)"
POOLWATCH = "poolwatch's other modules"
OTHER = "the rest of the standard library"
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("pydantic", ("pydantic", "pydantic_core", "annotated_types", "typing_inspection")),
    ("the Docker SDK (requests, urllib3)", ("docker", "requests", "urllib3", "idna",
                                            "charset_normalizer", "certifi")),
    ("asyncio (ssl, concurrent.futures)", ("asyncio", "ssl", "_ssl", "concurrent")),
    ("structlog", ("structlog",)),
    ("PyYAML", ("yaml", "_yaml")),
    ("psutil", ("psutil",)),
    ("importlib.metadata (pydantic's plugin loader; the version)", ("importlib.metadata",)),
    (CONFIG, ("poolwatch.config", "poolwatch.*.settings", "poolwatch.*.*.settings")),
    (POOLWATCH, ("poolwatch",)),
)  # fmt: skip
"""Import groups, first match wins. A module is counted in the group of its own name or, when
that has none, of the nearest library that imported it (`email` under importlib.metadata); the
standard library that poolwatch's own modules import is `OTHER`."""


def _group_of(name: str) -> str | None:
    for group, patterns in GROUPS:
        for pattern in patterns:
            if "*" in pattern:
                regex = pattern.replace(".", r"\.").replace("*", r"[^.]+")
                if re.fullmatch(regex, name):
                    return group
            elif name == pattern or name.startswith(pattern + "."):
                return group
    return None


def import_times(stderr: str, baseline: Iterable[str] = ()) -> Counter[str]:
    """Microseconds of import by group, from `-X importtime` lines (each module's own time,
    its imports not included), leaving out the modules of `baseline` (the interpreter's own)."""
    skip = set(baseline)
    lines = [line for line in stderr.splitlines() if line.startswith("import time:")]
    parsed: list[tuple[int, int, str]] = []
    for line in lines:
        own, _, raw = line.removeprefix("import time:").split("|")
        if not own.strip().isdigit():
            continue  # the header line
        name = raw.rstrip()
        depth = (len(name) - len(name.lstrip(" "))) // 2
        parsed.append((depth, int(own), name.strip()))
    # the lines come after their imports (post-order): read backwards, each parent is met first
    totals: Counter[str] = Counter()
    chain: list[str] = []
    for depth, micros, module in reversed(parsed):
        del chain[depth:]
        chain.append(module)
        if module in skip:
            continue
        group = next((g for n in reversed(chain) if (g := _group_of(n)) is not None), OTHER)
        if group in (CONFIG, POOLWATCH) and _group_of(module) is None:
            group = OTHER  # a standard module poolwatch imports is not poolwatch's own time
        totals[group] += micros
    return totals


def imported(stderr: str) -> set[str]:
    return {
        line.rsplit("|", 1)[1].strip()
        for line in stderr.splitlines()
        if line.startswith("import time:") and line.rsplit("|", 1)[1].strip() != "package"
    }


@dataclass
class Once:
    containers: int
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    interpreter: list[float] = field(default_factory=list)
    """Wall of `python -c pass` with the same interpreter and site: the floor of any start."""
    imports: list[Counter[str]] = field(default_factory=list)
    modules: list[int] = field(default_factory=list)

    def import_seconds(self) -> list[float]:
        return [sum(c.values()) / 1e6 for c in self.imports]

    def group_seconds(self) -> list[tuple[str, float]]:
        """Median seconds per group, largest first (groups that cost nothing left out)."""
        names = {g for c in self.imports for g in c}
        rows = [(g, median([c.get(g, 0) / 1e6 for c in self.imports])) for g in names]
        return sorted((r for r in rows if r[1] > 0), key=lambda r: -r[1])


def _run_once(argv: Sequence[str], env: dict[str, str], count: int) -> tuple[float, float, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    seen = set()
    for line in done.stdout.splitlines():
        result = json.loads(line)
        if result["check"] == "cpu_percent":
            seen.add(result["instance"])
    if done.returncode not in (0, 1, 2) or len(seen) != count:
        raise BenchError(
            f"poolwatch --once over {count} containers: exit {done.returncode}, {len(seen)} with "
            f"a CPU %: {done.stderr.strip()[-500:]}"
        )
    return wall, cpu, done.stderr


def once_over_containers(stack: Stack, env: dict[str, str], reps: int) -> Once:
    """`poolwatch --once --format json` as a fresh process with the Docker source only (the
    host off, `include` this run's containers, as `bench/docker_poll.py --once`), `reps` times
    after one warm-up (which writes the bytecode caches an installed package has); then `reps`
    times under `-X importtime` for the breakdown, and `python -c pass` for the floor."""
    count = len(stack.containers.names)
    config = stack.root / "goals-once.yaml"
    pattern = f"{CONTAINER_PREFIX}{stack.containers.run}-*"
    config.write_text(
        f'host: {{enabled: false}}\ndocker: {{enabled: on, include: ["{pattern}"]}}\n'
    )
    host_only = stack.poolwatch_env(sources="host")
    del host_only["POOLWATCH_DOCKER"]  # the file's `enabled: on` decides
    env = host_only | env
    argv = poolwatch_command("--config", str(config), "--once", "--format", "json")
    result = Once(count)
    _run_once(argv, env, count)  # the warm-up
    for _ in range(reps):
        wall, cpu, _ = _run_once(argv, env, count)
        result.walls.append(wall)
        result.cpus.append(cpu)
    bare = [sys.executable, "-X", "importtime", "-c", "pass"]
    baseline = imported(subprocess.run(bare, capture_output=True, text=True, check=True).stderr)
    for _ in range(reps):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)
        result.interpreter.append(time.perf_counter() - started)
        _, _, stderr = _run_once(argv, env | {"PYTHONPROFILEIMPORTTIME": "1"}, count)
        result.imports.append(import_times(stderr, baseline))
        result.modules.append(len(imported(stderr) - baseline))
    return result


def shell_walls(stack: Stack, reps: int) -> list[float]:
    """Wall seconds of one shell poller poll (`docker stats --no-stream` over every running
    container is most of it), `reps` times."""
    walls = []
    for _ in range(reps):
        started = time.monotonic()
        done = subprocess.run(
            ["bash", str(measure.SHELL_POLLER)],
            env=stack.shell_env(CYCLES="1"),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        walls.append(time.monotonic() - started)
        if done.returncode != 0 or "cycle=1" not in done.stdout:
            raise BenchError(f"shell poller exited {done.returncode}: {done.stderr[-500:]}")
    return walls
