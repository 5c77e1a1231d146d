"""How a watched container can be reached, for the dependency graph (`core.dependencies`). Pure.

A DSN names a container by its name, its compose service, a network alias or its short id, or
by one of its addresses, or by a port it publishes on this host. Names and configured port
bindings survive a stop (inspect keeps them); addresses and ports the engine chose at start do
not (the list endpoint has none for a stopped container), so the collector remembers what a
container had while it ran (`Reach`): the parent matters most when it is down.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from poolwatch.core.dependencies import ContainerAddress
from poolwatch.sources.docker.containers import Container

SERVICE_LABEL = "com.docker.compose.service"
SHORT_ID = 12


@dataclass(frozen=True, slots=True)
class Reach:
    """What a container had while it last ran: its addresses and published ports."""

    ips: frozenset[str]
    published: frozenset[int]


def remembered(before: Mapping[str, Reach], containers: Iterable[Container]) -> dict[str, Reach]:
    """`before`, with what each container lists now where it lists anything (a running one)."""
    found = dict(before)
    for container in containers:
        if container.ips or container.published:
            found[container.id] = Reach(container.ips, container.published)
    return found


def network_aliases(inspected: Mapping[str, Any]) -> frozenset[str]:
    """Inspect's names of a container on its networks: `Aliases` (compose puts the service
    there; Docker before API 1.45 the short id too) and `DNSNames` (API 1.44+)."""
    networks = (inspected.get("NetworkSettings") or {}).get("Networks") or {}
    return frozenset(
        str(name)
        for network in networks.values()
        if isinstance(network, Mapping)
        for key in ("Aliases", "DNSNames")
        for name in network.get(key) or ()
        if name
    )


def bound_ports(host_config: Mapping[str, Any]) -> frozenset[int]:
    """The host ports a container is configured to publish over TCP (`-p 127.0.0.1:5433:5432`),
    known while it is stopped too; a port the engine picks at start (`-p 5432`) is not."""
    found: set[int] = set()
    for spec, bindings in (host_config.get("PortBindings") or {}).items():
        if not str(spec).endswith("/tcp"):
            continue
        for binding in bindings or ():
            port = str((binding or {}).get("HostPort") or "")
            if port.isdigit() and int(port) > 0:  # "0" or "": the engine picks one at start
                found.add(int(port))
    return frozenset(found)


def container_address(
    container: Container,
    aliases: frozenset[str],
    host_config: Mapping[str, Any],
    reach: Reach | None,
) -> ContainerAddress:
    """One container as `core.dependencies` matches it."""
    names = {container.name, container.id[:SHORT_ID], *aliases}
    service = container.labels.get(SERVICE_LABEL)
    if service:
        names.add(service)
    ips = container.ips | (reach.ips if reach is not None else frozenset())
    published = container.published | bound_ports(host_config)
    if reach is not None:
        published |= reach.published
    return ContainerAddress(
        container.name, frozenset(names - {""}), ips, published, container.running
    )
