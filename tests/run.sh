#!/usr/bin/env bash
# The one test command: provisions what the tests need on a fresh Debian 12 machine (as root),
# installs poolwatch with its test extra into .venv, then runs lint, types and every test, and
# then the unit and source tests again on the lowest dependency versions pyproject.toml allows
# (tests/lowest.sh). Extra arguments go to pytest (e.g. `bash tests/run.sh -k evaluate`); such a
# focused run leaves out the lowest-versions step. Fails when either run fails.
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
status=0
.venv/bin/pytest "$@" || status=$?
if [ $# -eq 0 ]; then
    echo "== pytest on the lowest allowed dependency versions"
    lowest=0
    bash tests/lowest.sh || lowest=$?
    [ "$status" -ne 0 ] || status=$lowest
fi
exit "$status"
