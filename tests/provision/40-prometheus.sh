#!/usr/bin/env bash
# Real Prometheus and Alertmanager (Debian's packages) for the stack tests and config checks.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need_packages prometheus prometheus-alertmanager
# Debian names the Alertmanager binary prometheus-alertmanager
for tool in prometheus promtool prometheus-alertmanager amtool; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done
