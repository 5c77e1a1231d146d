#!/usr/bin/env bash
# Real Prometheus and Alertmanager (Debian's packages) for the stack tests and config checks.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need_packages prometheus prometheus-alertmanager
command -v prometheus promtool alertmanager amtool >/dev/null
