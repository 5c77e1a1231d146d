#!/usr/bin/env bash
# Icinga 2, the real consumer of `--format nagios`: the tests run it as a private process on
# loopback (never the system service) and read back the state and perfdata it parsed.
# monitoring-plugins gives the NRPE/Nagios command examples their neighbours (check_dummy...).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need_packages icinga2-bin monitoring-plugins-basic
command -v icinga2 >/dev/null
# the package's service would hold the default run dir and ports; the tests want none of it
if command -v systemctl >/dev/null && systemctl is-active --quiet icinga2 2>/dev/null; then
    echo "note: a system icinga2 service is running; the tests do not use it"
fi
