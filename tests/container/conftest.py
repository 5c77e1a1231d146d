"""The image under test, built once per session from the current source.

tests/provision/30-image.sh makes what a registry would give: the base image
(`poolwatch-base/debian-python:bookworm`, debootstrap) and a wheel mirror (.cache/wheel-mirror).
This fixture serves the mirror on a loopback port and builds the Dockerfile against it with
`--network host`, so a build here is the build a user runs, only with `BASE_IMAGE` and
`PIP_INDEX_URL` pointed at local stand-ins. Building here rather than in the provision step means
every pytest run tests the source as it is now; the layer cache keeps a rebuild to seconds.
Missing prerequisites fail the session: CI must prove the image, never skip it.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import threading
import time
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = "poolwatch-base/debian-python:bookworm"
MIRROR = ROOT / ".cache" / "wheel-mirror"
TAG = "poolwatch:test"
BUILD_TIMEOUT = 600
MIRROR_PORT = 38611
"""Fixed, because the index URL is a build argument and so part of every RUN layer's cache key;
an ephemeral port (when this one is taken) only costs a full rebuild."""


def docker(*args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=check
    )


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture(scope="session")
def image() -> Iterator[str]:
    """A tag of the poolwatch image built from this checkout, this session's own: other
    checkouts' sessions on a shared engine build `poolwatch:test` too, and that tag moves.
    Removed at the end (the image goes with it unless `poolwatch:test` still names it)."""
    if shutil.which("docker") is None or docker("info", check=False).returncode != 0:
        pytest.fail("no Docker engine: run tests/provision/20-docker.sh (or bash tests/run.sh)")
    if docker("image", "inspect", BASE_IMAGE, check=False).returncode != 0:
        pytest.fail(f"no base image {BASE_IMAGE}: run tests/provision/30-image.sh")
    if not (MIRROR / "simple" / "index.html").is_file():
        pytest.fail(f"no wheel mirror in {MIRROR}: run tests/provision/30-image.sh")
    handler = functools.partial(_QuietHandler, directory=str(MIRROR))
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", MIRROR_PORT), handler)
    except OSError:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    revision = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    session_tag = f"{TAG}-{uuid.uuid4().hex[:10]}"
    try:
        started = time.monotonic()
        build = docker(
            "build",
            "--network",
            "host",
            "--build-arg",
            f"BASE_IMAGE={BASE_IMAGE}",
            "--build-arg",
            f"PIP_INDEX_URL=http://127.0.0.1:{server.server_port}/simple",
            "--build-arg",
            f"VERSION={version}",
            "--build-arg",
            f"REVISION={revision or 'unknown'}",
            "--tag",
            TAG,
            "--tag",
            session_tag,
            str(ROOT),
            timeout=BUILD_TIMEOUT,
            check=False,
        )
    finally:
        server.shutdown()
        server.server_close()
    if build.returncode != 0:
        pytest.fail(f"docker build failed:\n{build.stdout[-4000:]}\n{build.stderr[-4000:]}")
    print(f"built {session_tag} in {time.monotonic() - started:.1f}s")
    yield session_tag
    docker("image", "rm", session_tag, check=False)


def root_propagation() -> str:
    """`rslave` (as docker-compose.yml has it) where `/` is a shared or slave mount, as on any
    systemd host; Docker refuses `rslave` on a private `/`, which a bare CI machine may have."""
    result = subprocess.run(
        ["findmnt", "--noheadings", "--output", "PROPAGATION", "/"],
        capture_output=True,
        text=True,
        check=False,
    )
    return ",rslave" if result.stdout.strip() in ("shared", "private,slave", "slave") else ""


HOST_VIEW = [
    "--volume",
    "/proc:/host/proc:ro",
    "--env",
    "POOLWATCH_PROCFS=/host/proc",
    "--env",
    "POOLWATCH_ROOTFS=/host/root",
]
"""The host view of docker-compose.yml; `/` is added with the propagation this machine allows."""


@pytest.fixture
def run_args() -> list[str]:
    """`docker run` options every test uses, as docker-compose.yml has them: read-only, no
    capabilities, the host view, the image's own (non-root) user; and no network."""
    return [
        "--read-only",
        "--network",
        "none",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges:true",
        *HOST_VIEW,
        "--volume",
        f"/:/host/root:ro{root_propagation()}",
    ]


@pytest.fixture
def container_name() -> Iterator[str]:
    """A fresh name; whatever runs under it is removed (with its anonymous volume) afterwards."""
    name = f"poolwatch-test-image-{uuid.uuid4().hex[:10]}"
    yield name
    docker("rm", "--force", "--volumes", name, check=False)
