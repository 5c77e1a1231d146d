"""DockerDown: a private dockerd (own socket, data-root, exec-root, pidfile and containerd, in a
temp dir) is stopped and started again, or frozen (SIGSTOP) and thawed; the shared engine is never
touched."""

from __future__ import annotations

import asyncio
import gc
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.docker_source.helpers import IMAGE, Containers, docker_cli, matching
from tests.eventually import eventually, eventually_sync

from poolwatch.sources.docker import watch

pytestmark = [
    pytest.mark.integration,
    # docker SDK 7.x: UnixHTTPConnection.connect() does not close its socket when connect() fails
    # (engine stopped), so each failed call leaks one socket until GC. Upstream, not poolwatch.
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


class PrivateEngine:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.host = f"unix://{root}/d.sock"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = [
            "dockerd",
            f"--host={self.host}",
            f"--data-root={self.root}/data",
            f"--exec-root={self.root}/exec",
            f"--pidfile={self.root}/d.pid",
            "--iptables=false", "--ip-masq=false", "--ip-forward=false", "--bridge=none",
            "--storage-driver=vfs",
            "--containerd-namespace=poolwatch-test",
            "--containerd-plugins-namespace=poolwatch-test-plugins",
        ]  # fmt: skip
        with (self.root / "d.log").open("ab") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=log)
        try:
            eventually_sync(self._answers, "the private dockerd answering", 60, 1.0)
        except AssertionError:
            log_tail = (self.root / "d.log").read_text(errors="replace")[-2000:]
            pytest.fail(f"the private dockerd did not start:\n{log_tail}")

    def _answers(self) -> bool:
        """`docker info` answers; the wait ends at once if dockerd exited."""
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"dockerd exited with {self.process.returncode}")
        try:
            docker_cli("info", "--format", "{{.ID}}", host=self.host, timeout=5)
        except (RuntimeError, subprocess.TimeoutExpired):
            return False
        return True

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def private_engine(engine: None) -> Iterator[PrivateEngine]:
    root = Path(tempfile.mkdtemp(prefix="pw-dk-", dir="/tmp"))  # a socket path must be short
    private = PrivateEngine(root)
    try:
        private.start()
        image = subprocess.run(
            ["docker", "save", IMAGE], capture_output=True, check=True, timeout=60
        ).stdout
        subprocess.run(
            ["docker", "-H", private.host, "load"],
            input=image, capture_output=True, check=True, timeout=60,
        )  # fmt: skip
        yield private
    finally:
        private.stop()
        shutil.rmtree(root, ignore_errors=True)


async def test_engine_down_then_back(private_engine: PrivateEngine, watching: Any) -> None:
    made = Containers(host=private_engine.host)
    environment = {"DOCKER_HOST": private_engine.host}
    try:
        async with watching(environment=environment, include=[made.prefix + "*"]) as w:
            await asyncio.to_thread(private_engine.stop)
            down = await w.event(matching("DockerDown", "firing", "engine"))
            assert down.severity == "critical"

            w.collector.connected.clear()
            await asyncio.to_thread(private_engine.start)
            await w.event(matching("DockerDown", "resolved", "engine"))
            await w.connected()
            # the stream is back: a crash loop in the restarted engine is told at once
            name = made.run("after", "--restart", "always", command=("sh", "-c", "sleep 1; exit 1"))
            await w.event(matching("ContainerRestartFrequent", "firing", name), within=20)
    finally:
        made.remove_all()
        gc.collect()  # collect the SDK's leaked sockets here, under this test's filter


async def test_hung_engine_ends_the_subscription_and_it_resumes(
    private_engine: PrivateEngine, watching: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stopped (SIGSTOP) dockerd keeps the event connection open and says nothing: the
    keepalive ping must end the subscription, and a new one must follow once it answers."""
    monkeypatch.setattr(watch, "PING_EVERY", 1.0)
    made = Containers(host=private_engine.host)
    environment = {"DOCKER_HOST": private_engine.host}
    process = private_engine.process
    assert process is not None
    try:
        async with watching(environment=environment, include=[made.prefix + "*"]) as w:
            process.send_signal(signal.SIGSTOP)
            down = await w.event(matching("DockerDown", "firing", "engine"))
            assert down.severity == "critical"
            # ping every 1 s, each given `timeout` (5 s); at main the stream stayed "connected".
            # polled: an asyncio.Event can be awaited set, not cleared
            await eventually(
                lambda: not w.collector.connected.is_set(), "the subscription ended", 30, 0.2
            )

            process.send_signal(signal.SIGCONT)
            await w.event(matching("DockerDown", "resolved", "engine"))
            await w.connected()
            # a new subscription, not the old connection: crash-loop restarts arrive through it
            name = made.run("after", "--restart", "always", command=("sh", "-c", "sleep 1; exit 1"))
            await w.event(matching("ContainerRestartFrequent", "firing", name), within=20)
    finally:
        process.send_signal(signal.SIGCONT)  # never leave it stopped: stop() needs it running
        made.remove_all()
        gc.collect()
