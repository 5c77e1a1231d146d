"""Who depends on whom, found with no configuration: the graph behind one page per outage.

A PostgreSQL, Redis or PgBouncer target depends on the container that serves it: the one whose
name, compose service, network alias or short id is the host its DSN or URL names (compared
without regard to case, as DNS does), or whose address it is, or, when the host is this machine
(`localhost`, a loopback or unspecified address, or one of `local`), that publishes the port.
A PgBouncer target depends on each PostgreSQL target that one of its databases' servers (SHOW
DATABASES `host`/`port`) is: the same host and port, both on this machine with the same port,
or both reaching the same container; and on the container a server reaches directly, so the
hold works also when that PostgreSQL is not watched.

Two containers that match (a scaled compose service, an address remembered from a container
since gone) are both parents: a dependant is held while either is down, which is the cautious
reading of "this may be why". A unix socket (`/run/postgresql`, `@abstract`) names no container.
No node is its own parent.

`depends_on:` overrides: a target that declares parents has exactly those, none found; one that
declares none keeps what was found. Pure: no I/O, no import of a plugin.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

Node = tuple[str, str]
"""(source, instance): `("docker", "matrixon-postgres-1")`, `("postgres", "main")`."""

DOCKER = "docker"
"""The source whose instances are containers (the Docker source's name; core imports no plugin)."""
POSTGRES = "postgres"
"""The source a PgBouncer's servers are matched against."""
LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain"})
"""Names that mean this machine wherever poolwatch runs."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where one target connects (or, for a PgBouncer backend, where its server is)."""

    node: Node
    """The target that connects there."""
    host: str
    """As the DSN or URL says: a name, an IPv4/IPv6 address, `localhost`, or a unix socket
    directory or path (`/run/postgresql`)."""
    port: int | None


@dataclass(frozen=True, slots=True)
class ContainerAddress:
    """How a watched container can be reached: what a DSN may name it by, and where."""

    name: str
    """The container's name; its node is `("docker", name)`."""
    names: frozenset[str]
    """Its name, compose service, network aliases, short id."""
    ips: frozenset[str]
    """Its addresses on its networks (IPv4 and global IPv6)."""
    published: frozenset[int]
    """The host ports it publishes (TCP)."""
    running: bool

    @property
    def node(self) -> Node:
        return (DOCKER, self.name)


def dependencies(
    targets: Sequence[Endpoint],
    backends: Sequence[Endpoint],
    containers: Sequence[ContainerAddress],
    declared: Mapping[Node, Sequence[Node]],
    local: frozenset[str],
) -> dict[Node, tuple[Node, ...]]:
    """Dependant → its parents, each tuple sorted; a node without parents is left out.

    `targets`: where each PostgreSQL, Redis or PgBouncer target connects; `backends`: per
    PgBouncer target, its databases' servers; `containers`: the watched ones; `declared`: the
    `depends_on:` of each target (an empty one declares nothing); `local`: the names and
    addresses of this machine.
    """
    here = frozenset(_key(name) for name in local) | LOCAL_NAMES
    known = [_Known.of(container) for container in containers]
    found: dict[Node, set[Node]] = {}
    for endpoint in targets:
        found.setdefault(endpoint.node, set()).update(
            known.node for known in _serving(endpoint, known, here)
        )
    servers = [endpoint for endpoint in targets if endpoint.node[0] == POSTGRES]
    for backend in backends:
        parents = found.setdefault(backend.node, set())
        reached = {k.node for k in _serving(backend, known, here)}
        parents |= reached
        for server in servers:
            if _same_server(backend, server, reached, known, here):
                parents.add(server.node)
    for node, named in declared.items():
        if named:
            found[node] = set(named)
    graph = {
        node: tuple(sorted(p for p in parents if p != node)) for node, parents in found.items()
    }
    return {node: parents for node, parents in graph.items() if parents}


@dataclass(frozen=True, slots=True)
class _Known:
    """A container's names and addresses as compared: each in `_key` form."""

    node: Node
    names: frozenset[str]
    ips: frozenset[str]
    published: frozenset[int]

    @classmethod
    def of(cls, container: ContainerAddress) -> _Known:
        return cls(
            container.node,
            frozenset(_key(n) for n in (container.name, *container.names) if n),
            frozenset(_key(ip) for ip in container.ips if ip),
            container.published,
        )


def _key(host: str) -> str:
    """A host as compared: lower case, without brackets or a trailing dot; an address in its
    canonical form (`::FFFF:10.0.0.2` and `10.0.0.2` are one, `0:0::1` is `::1`)."""
    text = host.strip().lower().removeprefix("[").removesuffix("]").removesuffix(".")
    try:
        address = ipaddress.ip_address(text.partition("%")[0])  # an IPv6 zone does not matter
    except ValueError:
        return text
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def _socket(host: str) -> bool:
    """A unix socket (a directory or a path; `@name` is Linux's abstract namespace), or no host."""
    text = host.strip()
    return not text or text.startswith(("/", "@"))


def _local(key: str, here: frozenset[str]) -> bool:
    if key in here:
        return True
    try:
        address = ipaddress.ip_address(key)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified  # 0.0.0.0 reaches this machine too


def _serving(endpoint: Endpoint, known: Iterable[_Known], here: frozenset[str]) -> list[_Known]:
    """The containers an endpoint reaches: by name, by address, or by a port published here."""
    if _socket(endpoint.host):
        return []
    key = _key(endpoint.host)
    by_port = endpoint.port is not None and _local(key, here)
    return [
        k
        for k in known
        if key in k.names or key in k.ips or (by_port and endpoint.port in k.published)
    ]


def _same_server(
    backend: Endpoint,
    server: Endpoint,
    reached: set[Node],
    known: Sequence[_Known],
    here: frozenset[str],
) -> bool:
    """Whether a PgBouncer's server and a PostgreSQL target's endpoint are one server."""
    if _socket(backend.host) or _socket(server.host):
        return False
    backend_key, server_key = _key(backend.host), _key(server.host)
    same_port = backend.port is not None and backend.port == server.port
    if same_port and (
        backend_key == server_key or (_local(backend_key, here) and _local(server_key, here))
    ):
        return True
    # by different names or ports to one container: `postgres:5432` inside the compose
    # network, `127.0.0.1:5433` published on this machine
    return bool(reached & {k.node for k in _serving(server, known, here)})
