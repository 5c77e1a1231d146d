#!/bin/sh
# Run once by the postgres image, when it initialises an empty data directory: creates the
# least-privilege role poolwatch connects as, from the DSN in the poolwatch_postgres_dsn secret
# (postgresql://USER:PASSWORD@postgres:5432/postgres; use a password without URL-special
# characters, e.g. `openssl rand -hex 24`). pg_monitor reads pg_stat_activity and the other
# statistics views for every database, and grants no access to any table's data.
set -eu
dsn=$(cat /run/secrets/poolwatch_postgres_dsn)
credentials=${dsn#*://}
credentials=${credentials%@*}
role=${credentials%%:*}
password=${credentials#*:}
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "${POSTGRES_DB:-$POSTGRES_USER}" \
    -v role="$role" -v password="$password" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password' CONNECTION LIMIT 3;
GRANT pg_monitor TO :"role";
SQL
