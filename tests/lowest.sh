#!/usr/bin/env bash
# The oldest versions pyproject.toml allows must work, not only the newest: installs every
# `[project] dependencies` entry at its lower bound (uv's lowest-direct resolution; their own
# dependencies at the newest they allow) into .venv-lowest, checks that each really is at its
# bound, then runs the unit tests and the PostgreSQL, Redis, Docker and PgBouncer source tests
# against them.
# Wheels only: a release with no wheel for this Python needs a compiler to install, so it is no
# sensible minimum. The test extra installs at its usual versions (only the runtime is proven).
# tests/run.sh runs this after the main pytest run; it expects the servers it provisions.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv-lowest
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check 'uv>=0.5,<1'
uv=("$venv/bin/uv" pip)
"${uv[@]}" compile -q --python "$venv/bin/python" --resolution lowest-direct --no-build \
    pyproject.toml -o "$venv/lowest.txt"
"${uv[@]}" install -q --python "$venv/bin/python" -c "$venv/lowest.txt" -e '.[test]'

"$venv/bin/python" - <<'PY'
"""Fail unless each direct dependency is installed at its lower bound (no bound: not proven)."""
import tomllib
from importlib.metadata import version

from packaging.requirements import Requirement
from packaging.version import Version

wrong = []
with open("pyproject.toml", "rb") as file:
    dependencies = tomllib.load(file)["project"]["dependencies"]
for line in dependencies:
    requirement = Requirement(line)
    bounds = [Version(s.version) for s in requirement.specifier if s.operator == ">="]
    installed = Version(version(requirement.name))
    print(f"  {requirement.name} {installed}")
    if len(bounds) != 1 or installed != bounds[0]:
        wrong.append(f"{requirement.name}: installed {installed}, lower bound {bounds}")
if wrong:
    raise SystemExit("not at the lower bound pyproject.toml allows:\n  " + "\n  ".join(wrong))
PY

# One pytest per group: in one process with the other two, the Docker source tests sometimes
# leave an SDK socket for the final garbage collection, which pytest then reports (under
# investigation; each group on its own has not shown it).
status=0
group() {
    local code=0
    "$venv/bin/pytest" -q -p no:cacheprovider "$@" || code=$?
    [ "$status" -ne 0 ] || status=$code
}
group -m "not integration"
group tests/postgres
group tests/redis_source
group tests/docker_source
group tests/pgbouncer_source
exit "$status"
