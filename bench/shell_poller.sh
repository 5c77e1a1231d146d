#!/usr/bin/env bash
# The baseline poolwatch replaces: each poll does what connection-pool-monitor.sh did, with the
# same tools (psql count, redis-cli info clients, /proc/stat, free, df, docker stats --no-stream,
# curl on breach) and the seed's thresholds and variables.
#
# Environment: PGHOST PGPORT PGUSER PGPASSWORD PGDATABASE (libpq's), REDIS_HOST REDIS_PORT,
# WEBHOOK_URL, the seed's *_WARNING/*_CRITICAL variables; CYCLES (default 1) polls, INTERVAL
# (default 0) seconds apart. Each poll prints one line:
#   cycle=<n> wall_ms=<ms> pg=<count> redis=<clients> cpu=<%> mem=<%> disk=<%> containers=<n> alerts=<n>
# pg or redis is -1 when it could not be read (the caller treats that as a failed measurement).
set -u

: "${POSTGRES_CONN_WARNING:=150}" "${POSTGRES_CONN_CRITICAL:=180}"
: "${REDIS_CONN_WARNING:=800}" "${REDIS_CONN_CRITICAL:=900}"
: "${CPU_WARNING:=80}" "${CPU_CRITICAL:=95}"
: "${MEMORY_WARNING:=85}" "${MEMORY_CRITICAL:=95}"
: "${DISK_WARNING:=80}" "${DISK_CRITICAL:=90}"
: "${CONTAINER_CPU_WARNING:=80}" "${CONTAINER_MEMORY_WARNING:=80}"
: "${REDIS_HOST:=127.0.0.1}" "${REDIS_PORT:=6379}"
CYCLES=${CYCLES:-1}
INTERVAL=${INTERVAL:-0}
HOSTNAME=$(hostname)

alerts=0
send_alert() { # alert severity value
    alerts=$((alerts + 1))
    [ -n "${WEBHOOK_URL:-}" ] || return 0
    curl -s -o /dev/null -m 5 -X POST -H 'content-type: application/json' \
        -d "{\"alert\":\"$1\",\"severity\":\"$2\",\"value\":\"$3\",\"host\":\"$HOSTNAME\",\"time\":\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\"}" \
        "$WEBHOOK_URL" || true
}

check() { # name value warning critical (integers; critical may be empty)
    local name=$1 value=$2 warning=${3%\%} critical=${4%\%}
    if [ -n "$critical" ] && [ "$value" -ge "$critical" ]; then
        send_alert "${name}Critical" critical "$value"
    elif [ "$value" -ge "$warning" ]; then
        send_alert "${name}High" warning "$value"
    fi
}

prev_total=0
prev_idle=0
for ((cycle = 1; cycle <= CYCLES; cycle++)); do
    start=$(date +%s%N)
    alerts=0

    pg=$(psql -tAX -c "SELECT count(*) FROM pg_stat_activity;" 2>/dev/null) || pg=-1
    [ -n "$pg" ] || pg=-1
    [ "$pg" -ge 0 ] && check PostgreSQLConnectionPool "$pg" "$POSTGRES_CONN_WARNING" "$POSTGRES_CONN_CRITICAL"

    redis=$(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" info clients 2>/dev/null |
        awk -F: '/^connected_clients:/ { print $2 + 0 }')
    [ -n "$redis" ] || redis=-1
    [ "$redis" -ge 0 ] && check RedisConnections "$redis" "$REDIS_CONN_WARNING" "$REDIS_CONN_CRITICAL"

    read -r _ user nice system idle iowait irq softirq steal _ </proc/stat
    total=$((user + nice + system + idle + iowait + irq + softirq + steal))
    idle_all=$((idle + iowait))
    if [ $((total - prev_total)) -gt 0 ]; then
        cpu=$((100 * ((total - prev_total) - (idle_all - prev_idle)) / (total - prev_total)))
    else
        cpu=0
    fi
    prev_total=$total
    prev_idle=$idle_all
    check CPUUsage "$cpu" "$CPU_WARNING" "$CPU_CRITICAL"

    mem=$(free | awk '/^Mem:/ { printf "%d", 100 * ($2 - $7) / $2 }')
    check MemoryUsage "$mem" "$MEMORY_WARNING" "$MEMORY_CRITICAL"

    disk=$(df -P / | awk 'NR == 2 { sub("%", "", $5); print $5 }')
    check DiskSpace "$disk" "$DISK_WARNING" "$DISK_CRITICAL"

    containers=0
    while read -r name cpu_perc mem_perc; do
        [ -n "$name" ] || continue
        containers=$((containers + 1))
        c=${cpu_perc%%.*}
        m=${mem_perc%%.*}
        [ "${c:-0}" -ge "$CONTAINER_CPU_WARNING" ] && send_alert ContainerCPUUsageHigh warning "$name $cpu_perc"
        [ "${m:-0}" -ge "$CONTAINER_MEMORY_WARNING" ] && send_alert ContainerMemoryUsageHigh warning "$name $mem_perc"
    done < <(docker stats --no-stream --format '{{.Name}} {{.CPUPerc}} {{.MemPerc}}' 2>/dev/null)

    wall_ms=$((($(date +%s%N) - start) / 1000000))
    echo "cycle=$cycle wall_ms=$wall_ms pg=$pg redis=$redis cpu=$cpu mem=$mem disk=$disk containers=$containers alerts=$alerts"
    [ "$cycle" -lt "$CYCLES" ] && sleep "$INTERVAL"
done
exit 0
