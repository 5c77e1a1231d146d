"""The dependency graph, found with no configuration (core/dependencies.py, pure): rule by rule."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from poolwatch.core.dependencies import ContainerAddress, Endpoint, Node, dependencies

PG = ("postgres", "main")
REPLICA = ("postgres", "replica")
CACHE = ("redis", "cache")
BOUNCER = ("pgbouncer", "edge")
PG_BOX = ("docker", "matrixon-postgres-1")
REDIS_BOX = ("docker", "matrixon-redis-1")
BOUNCER_BOX = ("docker", "matrixon-pgbouncer-1")
HERE = frozenset({"localhost", "127.0.0.1", "::1", "watchhost", "192.0.2.10"})


def box(
    name: str,
    *names: str,
    ips: Sequence[str] = (),
    published: Sequence[int] = (),
    running: bool = True,
) -> ContainerAddress:
    return ContainerAddress(
        name, frozenset({name, *names}), frozenset(ips), frozenset(published), running
    )


POSTGRES_BOX = box(
    PG_BOX[1], "postgres", "db", "3f2a1b4c5d6e", ips=["172.18.0.2", "fd00::2"], published=[5433]
)
REDIS_CONTAINER = box(REDIS_BOX[1], "redis", "cache", ips=["172.18.0.3"], published=[6379])
BOUNCER_CONTAINER = box(BOUNCER_BOX[1], "pgbouncer", ips=["172.18.0.4"], published=[6432])
STACK = [POSTGRES_BOX, REDIS_CONTAINER, BOUNCER_CONTAINER]


def graph(
    targets: Sequence[Endpoint],
    backends: Sequence[Endpoint] = (),
    containers: Sequence[ContainerAddress] = tuple(STACK),
    declared: Mapping[Node, Sequence[Node]] | None = None,
    local: frozenset[str] = HERE,
) -> dict[Node, tuple[Node, ...]]:
    return dependencies(targets, backends, containers, declared or {}, local)


@pytest.mark.parametrize(
    ("host", "port", "why"),
    [
        ("matrixon-postgres-1", 5432, "the container's name"),
        ("postgres", 5432, "its compose service"),
        ("db", 5432, "a network alias"),
        ("3f2a1b4c5d6e", 5432, "its short id (an alias on a user-defined network)"),
        ("172.18.0.2", 5432, "its IPv4 address"),
        ("fd00::2", 5432, "its IPv6 address"),
        ("[fd00:0:0::2]", 5432, "its IPv6 address, bracketed and written longer"),
        ("::ffff:172.18.0.2", 5432, "its IPv4 address mapped into IPv6"),
        ("127.0.0.1", 5433, "a port it publishes, on loopback"),
        ("localhost", 5433, "a port it publishes, by the name localhost"),
        ("::1", 5433, "a port it publishes, on IPv6 loopback"),
        ("127.0.0.53", 5433, "a port it publishes, on another loopback address"),
        ("watchhost", 5433, "a port it publishes, by this host's name"),
        ("192.0.2.10", 5433, "a port it publishes, on this host's own address"),
        ("0.0.0.0", 5433, "a port it publishes, on the unspecified address (this machine)"),
        ("DB", 5432, "an alias in another case"),
        ("Matrixon-Postgres-1.", 5432, "its name in another case, as an absolute DNS name"),
    ],
)
def test_a_target_depends_on_the_container_its_host_names(host: str, port: int, why: str) -> None:
    assert graph([Endpoint(PG, host, port)]) == {PG: (PG_BOX,)}, why


@pytest.mark.parametrize(
    ("host", "port", "why"),
    [
        ("/run/postgresql", 5432, "a unix socket directory"),
        ("/var/run/redis/redis.sock", None, "a unix socket path"),
        ("@pgsocket", 5432, "an abstract unix socket"),
        ("", 5432, "no host"),
        ("db.example.com", 5432, "a name no container has"),
        ("172.18.0.99", 5432, "an address no container has"),
        ("127.0.0.1", 5432, "a local port no container publishes"),
        ("203.0.113.5", 5433, "a published port, but on a host that is not this machine"),
        ("localhost", None, "a local host with no port known"),
    ],
)
def test_a_host_no_container_answers_to_gives_no_edge(
    host: str, port: int | None, why: str
) -> None:
    assert graph([Endpoint(PG, host, port)]) == {}, why


def test_each_target_gets_its_own_container() -> None:
    found = graph(
        [
            Endpoint(PG, "postgres", 5432),
            Endpoint(CACHE, "127.0.0.1", 6379),
            Endpoint(BOUNCER, "pgbouncer", 6432),
        ]
    )
    assert found == {PG: (PG_BOX,), CACHE: (REDIS_BOX,), BOUNCER: (BOUNCER_BOX,)}


def test_a_stopped_container_is_still_a_parent() -> None:
    """The parent matters most when it is down."""
    stopped = box(PG_BOX[1], "postgres", ips=["172.18.0.2"], running=False)
    assert graph([Endpoint(PG, "172.18.0.2", 5432)], containers=[stopped]) == {PG: (PG_BOX,)}


def test_two_containers_that_match_are_both_parents_sorted() -> None:
    replicas = [box("app-db-2", "db"), box("app-db-1", "db")]
    found = graph([Endpoint(PG, "db", 5432)], containers=replicas)
    assert found == {PG: (("docker", "app-db-1"), ("docker", "app-db-2"))}


def test_a_name_and_a_published_port_that_point_at_different_containers_give_both() -> None:
    """`localhost` names one container (network mode, an alias) and another publishes the
    port: both may be why."""
    named = box("sidecar", "localhost")
    found = graph([Endpoint(PG, "localhost", 5433)], containers=[POSTGRES_BOX, named])
    assert found == {PG: (PG_BOX, ("docker", "sidecar"))}


def test_a_target_with_several_hosts_depends_on_each_that_matches() -> None:
    found = graph([Endpoint(PG, "postgres", 5432), Endpoint(PG, "elsewhere.example", 5432)])
    assert found == {PG: (PG_BOX,)}


# --- PgBouncer: its servers -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "backend", "why"),
    [
        (("10.0.0.5", 5432), ("10.0.0.5", 5432), "the same host and port"),
        (("DB.internal", 5432), ("db.internal", 5432), "the same name in another case"),
        (("127.0.0.1", 5432), ("localhost", 5432), "both on this machine, the same port"),
        (("::1", 6000), ("watchhost", 6000), "both on this machine by other names"),
        (("127.0.0.1", 5433), ("postgres", 5432), "one container, published and by service"),
        (("172.18.0.2", 5432), ("db", 5432), "one container, by address and by alias"),
    ],
)
def test_a_pgbouncer_depends_on_the_postgres_target_its_server_is(
    target: tuple[str, int], backend: tuple[str, int], why: str
) -> None:
    found = graph(
        [Endpoint(PG, *target), Endpoint(REPLICA, "10.9.9.9", 5432)],
        backends=[Endpoint(BOUNCER, *backend)],
    )
    assert PG in found[BOUNCER], why
    assert REPLICA not in found[BOUNCER], why


@pytest.mark.parametrize(
    ("target", "backend", "why"),
    [
        (("10.0.0.5", 5432), ("10.0.0.5", 5433), "the same host, another port"),
        (("10.0.0.5", 5432), ("10.0.0.6", 5432), "another host"),
        (("127.0.0.1", 5432), ("127.0.0.1", 5433), "both local, another port"),
        (("/run/postgresql", 5432), ("/run/postgresql", 5432), "unix sockets"),
        (("10.0.0.5", 5432), ("10.0.0.5", None), "no port known for the server"),
    ],
)
def test_a_pgbouncer_server_that_is_another_postgres_gives_no_edge(
    target: tuple[str, int], backend: tuple[str, int | None], why: str
) -> None:
    found = graph([Endpoint(PG, *target)], backends=[Endpoint(BOUNCER, *backend)], containers=[])
    assert found == {}, why


def test_a_pgbouncer_depends_on_its_container_its_postgres_and_that_container() -> None:
    """Its own container by its DSN; the PostgreSQL target and its container by SHOW
    DATABASES (so the hold works also when PostgreSQL is not a target)."""
    found = graph(
        [Endpoint(BOUNCER, "127.0.0.1", 6432), Endpoint(PG, "127.0.0.1", 5433)],
        backends=[Endpoint(BOUNCER, "postgres", 5432), Endpoint(BOUNCER, "/tmp", 5432)],
    )
    assert found == {BOUNCER: (BOUNCER_BOX, PG_BOX, PG), PG: (PG_BOX,)}


def test_a_pgbouncer_server_in_a_container_that_is_no_target_still_names_the_container() -> None:
    found = graph([], backends=[Endpoint(BOUNCER, "db", 5432)])
    assert found == {BOUNCER: (PG_BOX,)}


def test_only_postgres_targets_are_a_pgbouncer_s_servers() -> None:
    """A Redis target on the same host and port is no PostgreSQL server."""
    found = graph(
        [Endpoint(CACHE, "10.0.0.5", 5432)], backends=[Endpoint(BOUNCER, "10.0.0.5", 5432)]
    )
    assert BOUNCER not in found


# --- depends_on -----------------------------------------------------------------------------


def test_declared_parents_add_an_edge_where_none_was_found() -> None:
    found = graph([Endpoint(PG, "db.example.com", 5432)], declared={PG: [("docker", "pg-vm")]})
    assert found == {PG: (("docker", "pg-vm"),)}


def test_declared_parents_replace_the_found_ones() -> None:
    found = graph(
        [Endpoint(PG, "postgres", 5432), Endpoint(CACHE, "redis", 6379)],
        declared={PG: [("docker", "pg-b"), ("docker", "pg-a")]},
    )
    assert found == {PG: (("docker", "pg-a"), ("docker", "pg-b")), CACHE: (REDIS_BOX,)}


def test_an_empty_declaration_keeps_what_was_found() -> None:
    assert graph([Endpoint(PG, "postgres", 5432)], declared={PG: []}) == {PG: (PG_BOX,)}


def test_a_declaration_for_a_node_without_endpoints_counts() -> None:
    assert graph([], declared={CACHE: [PG]}) == {CACHE: (PG,)}


# --- no self edges --------------------------------------------------------------------------


def test_no_node_is_its_own_parent() -> None:
    found = graph([Endpoint(PG, "postgres", 5432)], declared={CACHE: [CACHE, PG]})
    assert found == {PG: (PG_BOX,), CACHE: (PG,)}
    assert graph([], declared={PG: [PG]}) == {}


def test_a_container_addressed_by_a_target_of_docker_itself_is_no_self_edge() -> None:
    """A node of source docker that connects to itself (not a case today, held anyway)."""
    found = graph([Endpoint(PG_BOX, "postgres", 5432)])
    assert found == {}


def test_the_local_set_is_read_without_regard_to_case_and_form() -> None:
    found = graph([Endpoint(PG, "WatchHost", 5433)], local=frozenset({"watchhost"}))
    assert found == {PG: (PG_BOX,)}
    found = graph([Endpoint(PG, "fd00::10", 5433)], local=frozenset({"FD00:0::10"}))
    assert found == {PG: (PG_BOX,)}
