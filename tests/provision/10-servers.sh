#!/usr/bin/env bash
# PostgreSQL 15 and Redis binaries: the tests start private servers from them in temp dirs.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need_packages postgresql-15 redis-server
test -x /usr/lib/postgresql/15/bin/pg_ctl
command -v redis-server >/dev/null
