"""The API clients poolwatch makes: a unix-socket engine's client reads nothing from the
environment on each request (requests' proxies, NO_PROXY, ~/.netrc and CA bundles cannot apply
to a socket file); a TCP engine's keeps requests' environment handling."""

from __future__ import annotations

from pathlib import Path

from poolwatch.sources.docker.engine import make_client


def test_a_unix_socket_client_skips_the_per_request_environment(tmp_path: Path) -> None:
    api = make_client({"DOCKER_HOST": f"unix://{tmp_path}/docker.sock"}, 5, "1.41")
    try:
        assert api.trust_env is False
    finally:
        api.close()


def test_a_tcp_client_keeps_requests_environment_handling() -> None:
    api = make_client({"DOCKER_HOST": "tcp://127.0.0.1:9"}, 5, "1.41")
    try:
        assert api.trust_env is True
    finally:
        api.close()
