#!/usr/bin/env bash
# openssl: the webhook TLS test makes a private CA and server/client certificates with it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need_packages openssl
command -v openssl >/dev/null
