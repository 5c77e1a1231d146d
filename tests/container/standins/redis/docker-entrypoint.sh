#!/usr/bin/env bash
# The part of the official redis image's entrypoint contract that docker-compose.yml uses
# (https://hub.docker.com/_/redis): `redis-server ARGS...` (or ARGS alone, or a .conf file first)
# runs the server as the redis user in /data, with umask 0077; anything else is exec'd.
# The official image is built with protected mode off by default (it has no config file to say
# so); Debian's binary is not, so `--protected-mode no` comes first, where ARGS can still
# override it.
set -Eeuo pipefail

if [ "${1:0:1}" = '-' ] || [ "${1%.conf}" != "$1" ]; then
    set -- redis-server "$@"
fi

if [ "$1" = redis-server ] && [ "$(id -u)" = 0 ]; then
    find . \! -user redis -exec chown redis '{}' +
    exec setpriv --reuid=redis --regid=redis --init-groups "$BASH_SOURCE" "$@"
fi

if [ "$1" = redis-server ]; then
    [ "$(umask)" = 0022 ] && umask 0077
    shift
    if [ "${1:-}" != "" ] && [ "${1:0:1}" != '-' ]; then
        config=$1  # a config file comes first, as redis-server requires
        shift
        set -- redis-server "$config" --protected-mode no "$@"
    else
        set -- redis-server --protected-mode no "$@"
    fi
fi

exec "$@"
