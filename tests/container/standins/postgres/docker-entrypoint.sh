#!/usr/bin/env bash
# The part of the official postgres image's entrypoint contract that docker-compose.yml uses
# (https://hub.docker.com/_/postgres, "Environment Variables", "Initialization scripts"):
#   - POSTGRES_PASSWORD, POSTGRES_USER (default postgres), POSTGRES_DB (default POSTGRES_USER),
#     POSTGRES_INITDB_ARGS, each also as VAR_FILE (read from that file, e.g. a Docker secret);
#   - on an empty PGDATA: initdb as POSTGRES_USER with that password, scram-sha-256 for every
#     host, POSTGRES_DB created, then /docker-entrypoint-initdb.d/* in name order (*.sh run when
#     executable, sourced otherwise; *.sql through psql) against a server listening only on its
#     Unix socket, with those variables exported;
#   - `postgres` (or options alone) runs the server as the postgres user; anything else is exec'd.
set -Eeuo pipefail

# VAR_FILE: the variable's value from a file; setting both is an error, as in the official image
file_env() {
    local var=$1 file_var="${1}_FILE" default=${2:-}
    if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
        echo "error: both $var and $file_var are set (but are exclusive)" >&2
        exit 1
    fi
    local value=$default
    if [ -n "${!var:-}" ]; then
        value=${!var}
    elif [ -n "${!file_var:-}" ]; then
        value=$(<"${!file_var}")
    fi
    export "$var"="$value"
    unset "$file_var"
}

if [ "${1:0:1}" = '-' ]; then
    set -- postgres "$@"
fi

if [ "$1" != postgres ]; then
    exec "$@"
fi

if [ "$(id -u)" = 0 ]; then
    install -d -o postgres -g postgres -m 0700 "$PGDATA"
    install -d -o postgres -g postgres -m 3777 /var/run/postgresql
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$BASH_SOURCE" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    file_env POSTGRES_PASSWORD
    file_env POSTGRES_USER postgres
    file_env POSTGRES_DB "$POSTGRES_USER"
    file_env POSTGRES_INITDB_ARGS
    if [ -z "$POSTGRES_PASSWORD" ] && [ "${POSTGRES_HOST_AUTH_METHOD:-}" != trust ]; then
        echo "error: database is uninitialized and superuser password is not specified" >&2
        echo "  (set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE)" >&2
        exit 1
    fi
    # shellcheck disable=SC2086  # POSTGRES_INITDB_ARGS is a list of arguments
    initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
        $POSTGRES_INITDB_ARGS
    printf '\nhost all all all %s\n' "${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}" >>"$PGDATA/pg_hba.conf"

    export PGPASSWORD=$POSTGRES_PASSWORD
    pg_ctl -D "$PGDATA" -w start -o "-c listen_addresses='' -p ${PGPORT:-5432}"
    psql=(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc)
    if [ "$POSTGRES_DB" != postgres ]; then
        "${psql[@]}" --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db" ;'
    fi
    psql+=(--dbname "$POSTGRES_DB")
    for f in /docker-entrypoint-initdb.d/*; do
        case "$f" in
            *.sh)
                if [ -x "$f" ]; then
                    echo "$0: running $f"
                    "$f"
                else
                    echo "$0: sourcing $f"
                    # shellcheck disable=SC1090
                    . "$f"
                fi
                ;;
            *.sql)
                echo "$0: running $f"
                "${psql[@]}" -f "$f"
                ;;
            *) echo "$0: ignoring $f" ;;
        esac
    done
    pg_ctl -D "$PGDATA" -m fast -w stop
    unset PGPASSWORD
    echo
    echo 'PostgreSQL init process complete; ready for start up.'
    echo
fi

exec "$@"
