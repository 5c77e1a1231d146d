"""Which running target depends on which: read off the running collectors each poll (a
container that comes, goes or changes address moves its edges), for the cause step."""

from __future__ import annotations

import socket
from collections.abc import Iterable, Sequence

import psutil

from poolwatch.core.dependencies import ContainerAddress, Endpoint, Node, dependencies
from poolwatch.sources import Collector, Connects, Hosts

LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def local_addresses() -> frozenset[str]:
    """The names and addresses that mean this machine (a DSN at one reaches a published
    port of a container here)."""
    found = set(LOCAL_NAMES)
    found.add(socket.gethostname().lower())
    try:
        for addresses in psutil.net_if_addrs().values():
            found.update(a.address.split("%")[0] for a in addresses if a.family in _FAMILIES)
    except OSError:
        pass
    return frozenset(found)


_FAMILIES = (socket.AF_INET, socket.AF_INET6)


def graph(collectors: Iterable[Collector], local: frozenset[str]) -> dict[Node, tuple[Node, ...]]:
    """dependant → parents over what the collectors say now."""
    targets: list[Endpoint] = []
    backends: list[Endpoint] = []
    containers: list[ContainerAddress] = []
    declared: dict[Node, Sequence[Node]] = {}
    for collector in collectors:
        if isinstance(collector, Connects):
            targets += collector.endpoints()
            backends += collector.backends()
            if collector.depends_on:
                declared[(collector.source, collector.instance)] = collector.depends_on
        if isinstance(collector, Hosts):
            containers += collector.addresses()
    return dependencies(targets, backends, containers, declared, local)
