"""The Redis source's readings table (docs/sources/redis.md documents each): the names only, as
the other sources keep theirs, so that the settings (imported with every configuration, Redis
or not) need not build `info`'s INFO → readings specs. `info` derives its table from these."""

from poolwatch.core.model import UP_CHECK

EXHAUSTED_CHECK = "pool_exhausted"
"""1 while every client slot is taken: the count reached the server's `maxclients`, or Redis
refused poolwatch's own (re)connect for it."""
HIT_RATE_CHECK = "keyspace_hit_rate_percent"
LOGIN_UNITS = {"login_ok": "bool", "login_seconds": "seconds"}
"""The login probe's readings (poolwatch.sources.login), beside INFO's."""

CHECKS = (
    UP_CHECK,
    EXHAUSTED_CHECK,
    "connected_clients",  # info.READINGS, in its order
    "blocked_clients",
    "rejected_connections",
    "memory_percent",
    "evicted_keys",
    HIT_RATE_CHECK,
    *LOGIN_UNITS,
)
BOUNDED_PERCENT = frozenset({"memory_percent", HIT_RATE_CHECK})
