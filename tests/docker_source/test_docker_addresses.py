"""How a watched container can be reached (`DockerCollector.addresses`, for the dependency graph):
names, compose service, network aliases, addresses and published ports, from a recorded list
and inspect answer, then from a real container on a network of the test's own."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.docker_source.helpers import Containers, docker_cli, docker_config

from poolwatch.config import load as config
from poolwatch.core.dependencies import dependencies
from poolwatch.sources import Connects, Hosts
from poolwatch.sources.docker.addresses import (
    Reach,
    bound_ports,
    container_address,
    network_aliases,
    remembered,
)
from poolwatch.sources.docker.collector import DockerCollector
from poolwatch.sources.docker.containers import Container
from poolwatch.sources.postgres.collector import PostgresCollector

DATA = Path(__file__).resolve().parent / "data"
RECORDED: dict[str, Any] = json.loads((DATA / "v1_networked.json").read_text())
NETWORK = "pw-deps-probe-31678"
"""The recorded container's network."""


def test_the_list_entry_gives_addresses_and_published_tcp_ports() -> None:
    running = Container.from_list(RECORDED["list_running"])
    assert running.ips == {"172.21.0.2"}
    assert running.published == {32768}
    stopped = Container.from_list(RECORDED["list_stopped"])
    assert (stopped.ips, stopped.published) == (frozenset(), frozenset())


def test_the_list_entry_reads_ipv6_every_network_and_only_published_tcp() -> None:
    entry = {
        **RECORDED["list_running"],
        "Ports": [
            {"PrivatePort": 5432, "Type": "tcp"},  # exposed, not published
            {"IP": "0.0.0.0", "PrivatePort": 5432, "PublicPort": 5433, "Type": "tcp"},
            {"IP": "::", "PrivatePort": 5432, "PublicPort": 5433, "Type": "tcp"},
            {"IP": "0.0.0.0", "PrivatePort": 53, "PublicPort": 5353, "Type": "udp"},
        ],
        "NetworkSettings": {
            "Networks": {
                "front": {"IPAddress": "172.21.0.2", "GlobalIPv6Address": "fd00::2"},
                "back": {"IPAddress": "10.5.0.7", "GlobalIPv6Address": ""},
                "odd": None,
            }
        },
    }
    found = Container.from_list(entry)
    assert found.ips == {"172.21.0.2", "fd00::2", "10.5.0.7"}
    assert found.published == {5433}
    bare = Container.from_list({"Id": "a" * 64, "Names": ["/x"], "State": "created"})
    assert (bare.ips, bare.published) == (frozenset(), frozenset())


def test_inspect_gives_the_aliases_and_the_configured_host_ports() -> None:
    inspected = RECORDED["inspect"]
    assert network_aliases(inspected) == {"db", "57db02cc4cbc"}
    newer = {"NetworkSettings": {"Networks": {"n": {"Aliases": ["db"], "DNSNames": ["x", "db"]}}}}
    assert network_aliases(newer) == {"db", "x"}
    assert network_aliases({}) == frozenset()
    # `-p 127.0.0.1:0:5432`: the engine picks the port at start, so none is configured
    assert bound_ports(inspected["HostConfig"]) == frozenset()
    fixed = {
        "PortBindings": {
            "5432/tcp": [{"HostIp": "127.0.0.1", "HostPort": "5433"}, {"HostPort": ""}],
            "53/udp": [{"HostPort": "5353"}],
            "6379/tcp": None,
        }
    }
    assert bound_ports(fixed) == {5433}


def test_a_stopped_container_keeps_the_addresses_it_had_while_it_ran() -> None:
    running = Container.from_list(RECORDED["list_running"])
    stopped = Container.from_list(RECORDED["list_stopped"])
    kept = remembered({}, [running])
    assert (
        remembered(kept, [stopped]) == kept == {running.id: Reach(running.ips, running.published)}
    )
    aliases = network_aliases(RECORDED["inspect"])
    found = container_address(stopped, aliases, RECORDED["inspect"]["HostConfig"], kept[stopped.id])
    assert found.name == "pw-deps-probe-31678-c"
    assert found.names == {"pw-deps-probe-31678-c", "db", "57db02cc4cbc"}
    assert (found.ips, found.published, found.running) == (
        frozenset({"172.21.0.2"}),
        frozenset({32768}),
        False,
    )


def test_the_compose_service_and_the_short_id_are_names() -> None:
    entry = {
        **RECORDED["list_running"],
        "Labels": {"com.docker.compose.service": "postgres", "com.docker.compose.project": "m"},
    }
    found = container_address(Container.from_list(entry), frozenset(), {}, None)
    assert found.names == {"pw-deps-probe-31678-c", "postgres", "57db02cc4cbc"}
    assert found.running


def test_the_docker_collector_hosts_and_the_server_collectors_connect() -> None:
    assert isinstance(DockerCollector(docker_config()), Hosts)
    assert not isinstance(DockerCollector(docker_config()), Connects)


# --- a real container on a network of the test's own ------------------------------------------


@pytest.fixture
def network(engine: None) -> Iterator[str]:
    name = f"poolwatch-test-docker-{uuid.uuid4().hex[:8]}-net"
    docker_cli("network", "create", "--label", "poolwatch-test=docker", name, timeout=30)
    try:
        yield name
    finally:
        docker_cli("network", "rm", name, timeout=30)


@pytest.fixture
def on_network(network: str) -> Iterator[Containers]:
    """Containers removed before the network they are on."""
    made = Containers()
    try:
        yield made
    finally:
        made.remove_all()


def _postgres(name: str, dsn: str) -> PostgresCollector:
    target = config.load(env={"POOLWATCH_POSTGRES_DSN": dsn}).postgres.targets[0]
    return PostgresCollector(target.model_copy(update={"name": name}), environment={})


@pytest.mark.integration
async def test_a_real_container_is_found_by_name_alias_address_and_published_port(
    network: str, on_network: Containers
) -> None:
    name = on_network.run(
        "db",
        "--network-alias", "db",
        "-p", "127.0.0.1::5432",
        "--label", "com.docker.compose.service=postgres",
        network=network,
    )  # fmt: skip
    published = int(docker_cli("port", name, "5432/tcp").splitlines()[0].rpartition(":")[2])
    networks = json.loads(
        docker_cli("inspect", "--format", "{{json .NetworkSettings.Networks}}", name)
    )
    ip = networks[network]["IPAddress"]
    collector = DockerCollector(docker_config(include=[on_network.prefix + "*"]))
    try:
        await collector.collect()
        [found] = collector.addresses()
        assert found.name == name
        assert {name, "db", "postgres"} <= found.names
        assert (found.ips, found.published, found.running) == (
            frozenset({ip}),
            frozenset({published}),
            True,
        )

        servers = [
            _postgres("by-alias", "postgresql://mon@db:5432/app"),
            _postgres("by-service", "host=POSTGRES port=5432 user=mon"),
            _postgres("by-address", f"postgresql://mon@{ip}/app"),
            _postgres("by-port", f"postgresql://mon@127.0.0.1:{published}/app"),
            _postgres("elsewhere", "postgresql://mon@db.example.com/app"),
        ]
        targets = [e for server in servers for e in server.endpoints()]
        graph = dependencies(targets, [], collector.addresses(), {}, frozenset({"127.0.0.1"}))
        parent = (("docker", name),)
        assert graph == {
            ("postgres", "by-alias"): parent,
            ("postgres", "by-service"): parent,
            ("postgres", "by-address"): parent,
            ("postgres", "by-port"): parent,
        }

        docker_cli("stop", "-t", "0", name)
        await collector.collect()
        [stopped] = collector.addresses()
        assert not stopped.running
        # the addresses and the port it had while it ran
        assert (stopped.ips, stopped.published) == (frozenset({ip}), frozenset({published}))
        assert {"db", "postgres"} <= stopped.names
        graph = dependencies(targets, [], collector.addresses(), {}, frozenset({"127.0.0.1"}))
        assert graph[("postgres", "by-address")] == parent
        assert graph[("postgres", "by-port")] == parent
    finally:
        await collector.close()
