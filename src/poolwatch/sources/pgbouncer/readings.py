"""The PgBouncer source's readings table (docs/sources/pgbouncer.md documents each)."""

from poolwatch.core.model import UP_CHECK

CHECKS = (
    UP_CHECK,
    "pool_exhausted",
    "client_connections",
    "clients_waiting",
    "max_wait_seconds",
    "server_connections",
    "pool_saturated",
    "database_server_connections",
    "wait_per_transaction_seconds",
    "login_ok",  # the login probe (poolwatch.sources.login), with a `probe_dsn` only
    "login_seconds",
)

UNITS = {
    UP_CHECK: "bool",
    "pool_exhausted": "bool",
    "client_connections": "connections",
    "clients_waiting": "connections",
    "max_wait_seconds": "seconds",
    "server_connections": "connections",
    "pool_saturated": "bool",
    "database_server_connections": "connections",
    "wait_per_transaction_seconds": "seconds",
    "login_ok": "bool",
    "login_seconds": "seconds",
}
