"""The Redis source's pure parts, on recorded INFO text: the INFO → readings table, the limit's
fallbacks, the backoff, connection options, and the readings table of docs/sources/redis.md."""

from __future__ import annotations

from itertools import pairwise

import pytest
from redis.asyncio.connection import SSLConnection, UnixDomainSocketConnection
from tests.net import free_port
from tests.redis_source.harness import readme_readings

from poolwatch.config.load import ConfigError, load
from poolwatch.core.backoff import Backoff
from poolwatch.sources import SourceError
from poolwatch.sources.redis.collector import RedisCollector, address
from poolwatch.sources.redis.info import (
    READINGS,
    UNITS,
    HitRate,
    Sample,
    parse_info,
    resolve_maxclients,
    server_maxclients,
)
from poolwatch.sources.redis.options import connection_options
from poolwatch.sources.redis.readings import CHECKS, EXHAUSTED_CHECK, HIT_RATE_CHECK, LOGIN_UNITS
from poolwatch.sources.redis.settings import RedisTarget


def redis_target(url: str) -> RedisTarget:
    return load(env={"POOLWATCH_REDIS_URL": url}).redis.targets[0]


RECORDED = """\
# Server
redis_version:7.0.15
run_id:aaaa

# Clients
connected_clients:12
maxclients:1000
blocked_clients:2

# Memory
used_memory:52428800
maxmemory:104857600

# Stats
rejected_connections:{rejected}
keyspace_hits:{hits}
keyspace_misses:{misses}
evicted_keys:{evicted}

# Keyspace
db0:keys=3,expires=0,avg_ttl=0
"""


def info(
    rejected: int = 0, hits: int = 0, misses: int = 0, evicted: int = 0, **over: str
) -> Sample:
    fields = parse_info(
        RECORDED.format(rejected=rejected, hits=hits, misses=misses, evicted=evicted)
    )
    fields.update(over)
    return Sample(fields, resolve_maxclients(fields, None, None))


def measure(now: Sample, before: Sample | None) -> dict[str, tuple[float, float | None]]:
    measured = {spec.check: spec.measure(now, before) for spec in READINGS}
    return {check: value for check, value in measured.items() if value is not None}


def test_parse_info_keeps_fields_and_skips_headers() -> None:
    fields = parse_info(RECORDED.replace("\n", "\r\n"))
    assert fields["connected_clients"] == "12"
    assert fields["db0"] == "keys=3,expires=0,avg_ttl=0"
    assert not any(name.startswith("#") for name in fields)


def test_first_poll_has_gauges_only() -> None:
    assert measure(info(), None) == {
        "connected_clients": (12.0, 1000.0),
        "blocked_clients": (2.0, None),
        "memory_percent": (50.0, 100.0),
    }


def test_second_poll_adds_deltas_and_hit_rate_of_the_interval() -> None:
    before = info(rejected=5, hits=1000, misses=1000, evicted=7)
    now = info(rejected=8, hits=1090, misses=1010, evicted=7)
    measured = measure(now, before)
    assert measured["rejected_connections"] == (3.0, None)
    assert measured["evicted_keys"] == (0.0, None)
    # 90 hits and 10 misses this interval: 90%, although the lifetime rate is about 52%
    assert HitRate(100, 600).observe(now, before, at=10) == (90.0, 100, 1)


def test_no_traffic_means_no_hit_rate() -> None:
    before = info(hits=50, misses=50)
    assert HitRate(1, 600).observe(info(hits=50, misses=50), before, at=10) is None


def test_one_miss_of_an_idle_cache_is_no_hit_rate() -> None:
    """Judged per poll, one miss was a hit rate of 0 % (RedisKeyspaceHitRateLow fired)."""
    rate = HitRate(100, 600)
    assert rate.observe(info(misses=1), info(), at=10) is None


def test_a_slow_cache_is_judged_over_as_many_polls_as_hold_enough_lookups() -> None:
    rate = HitRate(100, 600)
    samples = [info(hits=30 * n, misses=10 * n) for n in range(5)]  # 40 lookups a poll
    seen = [
        rate.observe(now, before, at=10.0 * n)
        for n, (before, now) in enumerate(pairwise(samples), start=1)
    ]
    assert seen[:2] == [None, None]
    assert seen[2:] == [(75.0, 120, 3), (75.0, 120, 3)]  # the last 3 polls, sliding


def test_a_busy_cache_is_judged_over_its_last_poll_alone() -> None:
    rate = HitRate(100, 600)
    assert rate.observe(info(hits=100, misses=100), info(), at=10) == (50.0, 200, 1)
    assert rate.observe(info(hits=300, misses=100), info(hits=100, misses=100), at=20) == (
        100.0,
        200,
        1,
    )


def test_lookups_older_than_the_window_no_longer_count() -> None:
    rate = HitRate(100, 60)
    assert rate.observe(info(hits=80), info(), at=10) is None
    assert rate.observe(info(hits=80, misses=30), info(hits=80), at=40) == (
        pytest.approx(100 * 80 / 110),
        110,
        2,
    )
    # a minute later the first poll's 80 lookups are out of the window: 30 are too few
    assert rate.observe(info(hits=80, misses=30), info(hits=80, misses=30), at=70) is None


def test_no_maxmemory_means_no_memory_percent() -> None:
    assert "memory_percent" not in measure(info(maxmemory="0"), None)


def test_restart_counts_from_zero() -> None:
    before = info(rejected=100, hits=500)
    now = info(rejected=4, hits=30, misses=10, run_id="bbbb")
    measured = measure(now, before)
    assert measured["rejected_connections"] == (4.0, None)
    assert HitRate(1, 600).observe(now, before, at=10) == (75.0, 40, 1)


def test_maxclients_from_info_then_config_get_then_configured() -> None:
    with_info = {"maxclients": "1000"}
    assert resolve_maxclients(with_info, 50.0, None) == 1000.0
    assert resolve_maxclients({}, 50.0, None) == 50.0
    assert resolve_maxclients({}, None, 20) == 20.0
    assert resolve_maxclients({}, None, None) is None


def test_a_configured_limit_is_a_budget_below_the_servers_never_above() -> None:
    with_info = {"maxclients": "1000"}
    assert resolve_maxclients(with_info, None, 200) == 200.0
    assert resolve_maxclients(with_info, None, 5000) == 1000.0  # the server refuses at 1000
    assert resolve_maxclients({}, 50.0, 20) == 20.0
    assert server_maxclients(with_info, None) == 1000.0
    assert server_maxclients({}, 50.0) == 50.0
    assert server_maxclients({}, None) is None


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    for jitter, factor in ((lambda low, high: low, 0.5), (lambda low, high: high, 1.0)):
        backoff = Backoff(1.0, 30.0, rand=jitter)
        delays = [backoff.delay(n) for n in range(1, 9)]
        expected = [min(30.0, 2.0**i) * factor for i in range(8)]
        assert delays == pytest.approx(expected)


def test_connection_options_credentials_and_name() -> None:
    target = RedisTarget.model_validate(
        {
            "name": "cache",
            "url": "rediss://ops:from-url@cache.example:6380/2",
            "password": "from-config",
            "interval": 10,
            "timeout": 4,
            "rules": {},
        }
    )
    cls, options = connection_options(target, 2.0)
    assert cls is SSLConnection
    assert options["password"] == "from-config"
    assert options["username"] == "ops"
    assert options["db"] == 2
    assert options["client_name"] == "poolwatch"
    assert options["socket_timeout"] == options["socket_connect_timeout"] == 2.0
    assert address(options) == "cache.example:6380"
    cls, options = connection_options(redis_target("unix:///run/redis.sock"), 1.0)
    assert cls is UnixDomainSocketConnection
    assert address(options) == "/run/redis.sock"


@pytest.mark.parametrize(
    "url",
    ["memcached://u:hunter2-secret@cache:11211", "redis://u:hunter2-secret@cache/0?colour=red"],
)
def test_unusable_url_is_refused_at_load_without_the_password(url: str) -> None:
    """A URL redis-py cannot use is a config error naming the variable, not "Redis down"."""
    with pytest.raises(ConfigError) as failure:
        redis_target(url)
    assert "hunter2-secret" not in str(failure.value)
    assert "redis.targets.0" in str(failure.value)


def test_readme_documents_every_check_with_its_unit() -> None:
    assert readme_readings() == UNITS
    assert set(UNITS) == set(CHECKS)


def test_the_names_table_is_the_info_table_in_order() -> None:
    """`readings.CHECKS` is written out (the settings import it without `info`'s specs): it
    holds `info.READINGS` in their order, between the pool and hit-rate checks and the probe's."""
    expected = ("up", EXHAUSTED_CHECK, *(spec.check for spec in READINGS), HIT_RATE_CHECK)
    assert (*expected, *LOGIN_UNITS) == CHECKS


async def test_reconnect_attempts_wait_for_the_backoff() -> None:
    """Nothing listens on the port: the first poll tries and fails; polls inside the backoff
    do not try again; once the clock passes it, the next poll tries again."""
    clock = [100.0]
    collector = RedisCollector(
        redis_target(f"redis://127.0.0.1:{free_port()}/0"),
        backoff=Backoff(4.0, 30.0, rand=lambda low, high: low),
        clock=lambda: clock[0],
    )
    with pytest.raises(SourceError, match=r"Error 111") as first:
        await collector.collect()
    assert "next attempt" not in str(first.value)
    clock[0] += 1.0
    with pytest.raises(SourceError, match=r"next attempt in 1\.0s"):
        await collector.collect()
    clock[0] += 1.0
    with pytest.raises(SourceError) as third:
        await collector.collect()
    assert "next attempt" not in str(third.value)
    clock[0] += 3.0  # the second failure doubled the wait to 4s (jitter factor 0.5)
    with pytest.raises(SourceError, match=r"next attempt in 1\.0s"):
        await collector.collect()
