#!/usr/bin/env bash
# PgBouncer (Debian 12: 1.18): the PgBouncer source's tests run a private one, as the postgres
# user, in front of the private PostgreSQL 15 of 10-servers.sh (whose package ships pgbench).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need_packages pgbouncer postgresql-15
command -v pgbouncer >/dev/null
test -x /usr/lib/postgresql/15/bin/pgbench
# the package's own instance is not wanted: the tests start theirs on a free port
if systemctl is-active --quiet pgbouncer 2>/dev/null; then
    systemctl stop pgbouncer
fi
