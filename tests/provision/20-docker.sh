#!/usr/bin/env bash
# A real Docker engine for the Docker source and image tests, and a local busybox image
# (no registry is reachable here). dockerd runs without iptables or a bridge: test containers
# use --network none.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need_packages docker.io busybox-static

if ! docker info >/dev/null 2>&1; then
    echo "starting dockerd"
    nohup dockerd --iptables=false --bridge=none >/var/log/poolwatch-dockerd.log 2>&1 &
    for _ in $(seq 1 60); do
        docker info >/dev/null 2>&1 && break
        sleep 1
    done
    docker info >/dev/null 2>&1 || { tail -20 /var/log/poolwatch-dockerd.log; exit 1; }
fi

# poolwatch-test/busybox: /bin/busybox and its applet links, nothing else.
if ! docker image inspect poolwatch-test/busybox:latest >/dev/null 2>&1; then
    root=$(mktemp -d)
    mkdir -p "$root/bin" "$root/tmp" "$root/proc" "$root/sys" "$root/dev" "$root/etc"
    cp /bin/busybox "$root/bin/busybox"
    for applet in $("$root/bin/busybox" --list); do
        [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
    done
    tar -C "$root" -c . | docker import -c 'CMD ["/bin/sh"]' - poolwatch-test/busybox:latest >/dev/null
    rm -rf "$root"
fi
docker image inspect poolwatch-test/busybox:latest >/dev/null
