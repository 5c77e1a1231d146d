"""Where a real PgBouncer's databases connect (its SHOW DATABASES `host`/`port`, read by every
poll): the PgBouncer target depends on the PostgreSQL target that is that server."""

from __future__ import annotations

import pytest
from tests.pgbouncer_source.bouncer import Bouncer
from tests.postgres.pgserver import PgServer

from poolwatch.config import load as config
from poolwatch.core.dependencies import Endpoint, dependencies
from poolwatch.sources import Connects, SourceError
from poolwatch.sources.pgbouncer.collector import PgBouncerCollector
from poolwatch.sources.postgres.collector import PostgresCollector

pytestmark = pytest.mark.integration

BOUNCER = ("pgbouncer", "main")


async def test_the_backends_are_its_servers_and_name_the_postgres_target(
    bouncer: Bouncer, pg: PgServer
) -> None:
    target = config.load(env={"POOLWATCH_PGBOUNCER_DSN": bouncer.admin_dsn()}).pgbouncer
    collector = PgBouncerCollector(target.targets[0], environment={})
    assert isinstance(collector, Connects)
    assert collector.endpoints() == (Endpoint(BOUNCER, "127.0.0.1", bouncer.port),)
    assert collector.backends() == ()  # nothing read yet
    try:
        await collector.collect()
        server = (Endpoint(BOUNCER, "127.0.0.1", pg.port),)
        assert collector.backends() == server  # the admin console itself is left out

        watched = config.load(env={"POOLWATCH_POSTGRES_DSN": pg.dsn()}).postgres.targets[0]
        postgres = PostgresCollector(watched, environment={})
        graph = dependencies(
            [*postgres.endpoints(), *collector.endpoints()],
            collector.backends(),
            [],
            {},
            frozenset(),
        )
        assert graph == {BOUNCER: (("postgres", "main"),)}

        bouncer.stop()
        with pytest.raises(SourceError):
            await collector.collect()
        assert collector.backends() == server  # kept while PgBouncer is down
    finally:
        await collector.close()
