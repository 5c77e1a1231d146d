"""What the benchmarks run against: a private PostgreSQL (max_connections=200), a private Redis
(maxclients 1000), a webhook receiver, busybox containers, and poolwatch daemons.

The servers are the test fixtures' (tests/postgres/pgserver.py, tests/redis_source/harness.py,
tests/webhook/receiver.py): one way to run them, here and in the tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from tests.net import free_port
from tests.postgres.pgserver import MONITOR_PASSWORD, PgServer
from tests.redis_source.harness import RedisServer, raise_fd_limit
from tests.webhook.receiver import Receiver

from bench import procfs

IMAGE = "poolwatch-test/busybox:latest"
CONTAINER_PREFIX = "poolwatch-bench-"
RUN_LABEL = "poolwatch-bench.run"
"""Label key of this harness's containers; its value is the pid of the run that made them."""
REDIS_MAXCLIENTS = 1000


class BenchError(Exception):
    """A measurement could not be taken; `str()` says which and why."""


def docker_source_available() -> bool:
    """Whether this poolwatch has a Docker source (it is being built on another branch)."""
    return importlib.util.find_spec("poolwatch.sources.docker.collector") is not None


def docker(*args: str, timeout: float = 120) -> str:
    done = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise BenchError(f"docker {' '.join(args[:2])}: {done.stderr.strip()[-500:]}")
    return done.stdout.strip()


class Containers:
    """Busybox `sleep` containers without a network, named poolwatch-bench-<run>-<n>, labelled
    with this run's pid; all of them are removed by `remove_all` (and stale ones of dead runs
    by `remove_stale`)."""

    def __init__(self) -> None:
        self.run = str(os.getpid())
        self.names: list[str] = []

    def scale_to(self, count: int) -> None:
        if count < len(self.names):
            gone, self.names = self.names[count:], self.names[:count]
            docker("rm", "-f", *gone)
            return
        wanted = [f"{CONTAINER_PREFIX}{self.run}-{i:03d}" for i in range(len(self.names), count)]

        def start(name: str) -> str:
            docker(
                "run", "-d", "--network", "none", "--label", f"{RUN_LABEL}={self.run}",
                "--name", name, IMAGE, "sleep", "86400",
            )  # fmt: skip
            return name

        with ThreadPoolExecutor(4) as pool:
            for name in pool.map(start, wanted):
                self.names.append(name)
        running = self.running_ours()
        if running != count:
            raise BenchError(f"containers: {running} of ours running, expected {count}")

    def running_ours(self) -> int:
        return len(docker("ps", "-q", "--filter", f"label={RUN_LABEL}={self.run}").split())

    @staticmethod
    def running_total() -> int:
        """Every running container on the engine: what `docker stats` and poolwatch see."""
        return len(docker("ps", "-q").split())

    def remove_all(self) -> None:
        ids = docker("ps", "-aq", "--filter", f"label={RUN_LABEL}={self.run}").split()
        if ids:
            docker("rm", "-f", *ids, timeout=300)
        self.names = []

    @staticmethod
    def remove_stale() -> None:
        """Containers left by an earlier run of this harness that died without cleaning up."""
        lines = docker(
            "ps", "-a", "--filter", f"label={RUN_LABEL}", "--format",
            f'{{{{.ID}}}} {{{{.Label "{RUN_LABEL}"}}}}',
        ).splitlines()  # fmt: skip
        stale = [cid for cid, pid in (line.split() for line in lines) if not _alive(int(pid))]
        if stale:
            docker("rm", "-f", *stale, timeout=300)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Stack:
    """The servers, the receiver and the containers, started once for the whole run."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="poolwatch-bench-"))
        self.root.chmod(0o755)  # PostgreSQL runs as the postgres user below it
        self.pg: PgServer | None = None
        self.redis: RedisServer | None = None
        self.receiver = Receiver(free_port())
        self.containers = Containers()
        self.docker_source = docker_source_available()
        self._daemons = 0

    def start(self, *, docker_needed: bool) -> None:
        raise_fd_limit()
        pg_root = self.root / "pg"
        pg_root.mkdir()
        self.pg = PgServer(pg_root)
        self.pg.init()
        self.pg.start()
        self.pg.setup_roles()
        redis_dir = self.root / "redis"
        redis_dir.mkdir()
        self.redis = RedisServer(redis_dir, REDIS_MAXCLIENTS)
        self.redis.start()
        self.receiver.start()
        if docker_needed:
            try:
                docker("info", "--format", "{{.ServerVersion}}", timeout=20)
            except (BenchError, OSError, subprocess.TimeoutExpired) as exc:
                raise BenchError(
                    f"the Docker engine does not answer ({exc}); run tests/provision/20-docker.sh"
                ) from None
            docker("image", "inspect", IMAGE)
            Containers.remove_stale()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.containers.remove_all()
        with contextlib.suppress(Exception):
            self.receiver.stop()
        if self.redis is not None:
            with contextlib.suppress(Exception):
                self.redis.close()
        if self.pg is not None:
            with contextlib.suppress(Exception):
                self.pg.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    # --- what pollers need ----------------------------------------------------------------------

    @property
    def postgres(self) -> PgServer:
        assert self.pg is not None
        return self.pg

    @property
    def redis_server(self) -> RedisServer:
        assert self.redis is not None
        return self.redis

    def postmaster_pid(self) -> int:
        return int((self.postgres.data / "postmaster.pid").read_text().split()[0])

    def servers(self, *, engine: bool = True) -> procfs.Servers:
        postmaster = self.postmaster_pid()
        redis_process = self.redis_server.process
        assert redis_process is not None
        redis_pid = redis_process.pid
        readers: dict[str, Any] = {
            "postgres": lambda stats: procfs.tree_cpu(postmaster, stats),
            "redis": lambda stats: procfs.tree_cpu(redis_pid, stats),
        }
        if engine:
            readers["docker"] = procfs.engine_cpu
        return procfs.Servers(readers)

    def poolwatch_env(
        self, *, interval: str = "1s", sources: str = "all", **extra: str
    ) -> dict[str, str]:
        """The environment of one poolwatch: `all` sources (host, PostgreSQL, Redis, Docker when
        poolwatch has that source) or `host` only."""
        self._daemons += 1
        state = self.root / f"state-{self._daemons}"
        state.mkdir()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.root),
            "POOLWATCH_INTERVAL": interval,
            "POOLWATCH_STATE_DIR": str(state),
            "POOLWATCH_LOG_FORMAT": "json",
            "POOLWATCH_DOCKER": "off",
        }
        if sources == "all":
            env |= {
                "POOLWATCH_POSTGRES_DSN": self.postgres.dsn(),
                "POOLWATCH_REDIS_URL": self.redis_server.url,
                "POOLWATCH_WEBHOOK_URL": self.receiver.url,
                "POOLWATCH_DOCKER": "on" if self.docker_source else "off",
            }
        return env | extra

    def shell_env(self, **extra: str) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.root),
            "PGHOST": "127.0.0.1",
            "PGPORT": str(self.postgres.port),
            "PGUSER": "pw_monitor",
            "PGPASSWORD": MONITOR_PASSWORD,
            "PGDATABASE": "postgres",
            "REDIS_HOST": "127.0.0.1",
            "REDIS_PORT": str(self.redis_server.port),
            "WEBHOOK_URL": self.receiver.url,
        } | extra

    def log_path(self, name: str) -> Path:
        return self.root / f"{name}.log"


def poolwatch_command(*args: str) -> list[str]:
    """The installed `poolwatch` script beside this interpreter (what a user runs)."""
    script = Path(sys.executable).parent / "poolwatch"
    if not script.exists():
        raise BenchError(f"{script} is missing: install poolwatch into this environment first")
    return [str(script), *args]


class Daemon:
    """A running `poolwatch` daemon with its /metrics listener; stdout goes to a log file."""

    def __init__(self, stack: Stack, name: str, env: dict[str, str]) -> None:
        self.port = free_port()
        self.name = name
        self.log = stack.log_path(name)
        env = env | {"POOLWATCH_LISTEN": f"127.0.0.1:{self.port}"}
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                poolwatch_command(), env=env, stdout=out, stderr=subprocess.STDOUT
            )
        self.started = time.monotonic()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise BenchError(
                f"poolwatch daemon {self.name} exited with {self.proc.returncode}:\n{self.tail()}"
            )

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        self.check_alive()
        url = f"http://127.0.0.1:{self.port}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=10) as answer:
                text = answer.read().decode()
        except OSError as exc:
            raise BenchError(f"poolwatch daemon {self.name}: /metrics: {exc}") from None
        samples = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return samples

    def polls(self) -> dict[str, float]:
        """Polls started so far, per collector (`source:target`)."""
        return {
            f"{dict(labels)['source']}:{dict(labels)['target']}": value
            for (name, labels), value in self.metrics().items()
            if name == "poolwatch_polls_total"
        }

    def durations(self) -> dict[str, tuple[float, float]]:
        """Per collector: (duration of its last poll, wall time of its last successful poll)."""
        samples = self.metrics()
        out: dict[str, tuple[float, float]] = {}
        for (name, labels), value in samples.items():
            if name == "poolwatch_poll_duration_seconds":
                key = ("poolwatch_last_poll_timestamp_seconds", labels)
                who = f"{dict(labels)['source']}:{dict(labels)['target']}"
                out[who] = (value, samples.get(key, 0.0))
        return out

    def wait_polls(self, count: int, collectors: int, deadline: float = 120) -> dict[str, float]:
        """Until `collectors` collectors have each started `count` polls."""
        end = time.monotonic() + deadline
        polls: dict[str, float] = {}
        while True:
            try:
                polls = self.polls()
            except BenchError:
                self.check_alive()  # still starting: the listener is not up yet
            if len(polls) >= collectors and min(polls.values()) >= count:
                return polls
            if time.monotonic() > end:
                raise BenchError(
                    f"poolwatch daemon {self.name}: polls {polls} after {deadline:g}s, expected "
                    f"{collectors} collectors with {count} polls each:\n{self.tail()}"
                )
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@contextlib.contextmanager
def daemon(stack: Stack, name: str, env: dict[str, str]) -> Iterator[Daemon]:
    running = Daemon(stack, name, env)
    try:
        yield running
    finally:
        running.stop()


def run_async(coro: Any) -> Any:
    return asyncio.run(coro)
