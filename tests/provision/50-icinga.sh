#!/usr/bin/env bash
# Icinga 2, the real consumer of `--format nagios`: the tests run it as a private process on
# loopback (never the system service) and read back the state and perfdata it parsed.
# locales: localedef builds a comma-decimal locale for the perfdata locale test.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need_packages icinga2-bin locales
command -v icinga2 >/dev/null
command -v localedef >/dev/null
test -f /usr/share/i18n/locales/de_DE
