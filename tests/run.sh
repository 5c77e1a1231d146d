#!/usr/bin/env bash
# The one test command: provisions what the tests need on a fresh Debian 12 machine (as root),
# installs poolwatch with its test extra into .venv, then runs lint, types and every test.
# Extra arguments go to pytest (e.g. `bash tests/run.sh -k evaluate`).
set -euo pipefail
cd "$(dirname "$0")/.."

for step in tests/provision/[0-9]*.sh; do
    echo "== provision: ${step##*/}"
    bash "$step"
done

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy --strict"
.venv/bin/mypy
echo "== pytest"
exec .venv/bin/pytest "$@"
