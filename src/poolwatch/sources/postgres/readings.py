"""The PostgreSQL source's readings table (docs/sources/postgres.md documents each)."""

from poolwatch.core.model import UP_CHECK

CHECKS = (
    UP_CHECK,
    "pool_exhausted",
    "connections",
    "connections_by_state",
    "connections_waiting_on_locks",
    "connections_by_database",
    "connections_by_user",
    "connections_by_application",
    "connections_by_client",
    "longest_query_seconds",
    "oldest_transaction_seconds",
    "idle_in_transaction_seconds",
    "deadlocks",
    "database_size_bytes",
    "monitoring_query_blocked",
    "sessions_fatal",  # sessions.py
    "sessions_abandoned",
    "sessions_killed",
    "login_ok",  # the login probe (poolwatch.sources.login)
    "login_seconds",
)
