#!/usr/bin/env bash
# What the image tests (tests/container/) need to build the poolwatch image with no registry:
#   1. a base image made here: a minimal Debian bookworm with python3 and python3-venv, from
#      debootstrap, imported as poolwatch-base/debian-python:bookworm (kept between runs);
#   2. a wheel mirror: poolwatch's dependencies and build requirements, `pip download`ed into
#      .cache/wheel-mirror (refreshed when pyproject.toml changes). The session fixture serves it
#      on a loopback port for `docker build --network host --build-arg PIP_INDEX_URL=...`, because
#      a build container cannot reach the package index itself through this machine's TLS
#      interception;
#   3. docker-compose (Debian's v1) to validate docker-compose.yml.
# The image itself is built by the session fixture, so every pytest run tests the current source
# (layer cache makes that a few seconds when only the source changed).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need_packages debootstrap docker-compose python3-venv
cd "$(dirname "$0")/../.."

BASE_IMAGE=poolwatch-base/debian-python:bookworm
MIRROR_DIR=.cache/wheel-mirror

# The Debian mirror this machine's apt uses (deb822 or one-line sources), for debootstrap.
debian_mirror() {
    local uri
    uri=$(awk '/^URIs:/ {u=$2} /^Suites:/ && / bookworm( |$)/ && u {print u; exit}' \
        /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    if [ -z "$uri" ]; then
        uri=$(awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' \
            /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
    fi
    echo "${uri:-http://deb.debian.org/debian}"
}

if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    mirror=$(debian_mirror)
    echo "building $BASE_IMAGE with debootstrap from $mirror"
    root=$(mktemp -d /var/tmp/poolwatch-base.XXXXXX)
    trap 'rm -rf "$root"' EXIT
    debootstrap --variant=minbase --include=python3,python3-venv \
        bookworm "$root" "$mirror" >/var/log/poolwatch-debootstrap.log 2>&1 ||
        { tail -20 /var/log/poolwatch-debootstrap.log; exit 1; }
    # what a runtime never needs: package lists, caches, docs, man pages, locales
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
        "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/* "$root"/var/log/*
    tar --numeric-owner -C "$root" -c . |
        docker import \
            -c 'ENV LANG=C.UTF-8' \
            -c 'CMD ["python3"]' \
            -m "debootstrap --variant=minbase bookworm + python3, python3-venv" \
            - "$BASE_IMAGE" >/dev/null
    rm -rf "$root"
    trap - EXIT
fi
docker run --rm --network none "$BASE_IMAGE" python3 -c 'import venv, ensurepip'

# The wheel mirror: binary wheels of poolwatch's dependencies and build backend, with a PEP 503
# simple index over them. pip resolves them with Debian's own /usr/bin/python3 (in a small venv
# kept in .cache), the same Debian Python as the base image: pip evaluates environment markers
# against the interpreter it runs on (`--python-version` does not change that), and redis, for
# one, needs async-timeout only before Python 3.11.3. Keyed on pyproject.toml and that version.
python_version=$(docker run --rm --network none "$BASE_IMAGE" python3 -c 'import platform; print(platform.python_version())')
host_version=$(/usr/bin/python3 -c 'import platform; print(platform.python_version())')
if [ "$python_version" != "$host_version" ]; then
    echo "base image Python $python_version differs from /usr/bin/python3 $host_version:" \
        "docker image rm $BASE_IMAGE and run again" >&2
    exit 1
fi
stamp=$( (cat pyproject.toml; echo "$python_version") | sha256sum | cut -c1-16)
if [ ! -e "$MIRROR_DIR/.stamp-$stamp" ]; then
    echo "downloading the wheel mirror into $MIRROR_DIR"
    [ -x .cache/mirror-venv/bin/pip ] || /usr/bin/python3 -m venv .cache/mirror-venv
    mapfile -t requirements < <(/usr/bin/python3 -c '
import tomllib
data = tomllib.load(open("pyproject.toml", "rb"))
print("\n".join(data["project"]["dependencies"] + data["build-system"]["requires"]))')
    rm -rf "$MIRROR_DIR"
    mkdir -p "$MIRROR_DIR/files"
    .cache/mirror-venv/bin/pip download -q --disable-pip-version-check \
        --dest "$MIRROR_DIR/files" --only-binary=:all: "${requirements[@]}"
    /usr/bin/python3 - "$MIRROR_DIR" <<'PY'
import html, pathlib, re, sys
root = pathlib.Path(sys.argv[1])
projects: dict[str, list[str]] = {}
for wheel in sorted((root / "files").glob("*.whl")):
    name = re.sub(r"[-_.]+", "-", wheel.name.split("-")[0]).lower()
    projects.setdefault(name, []).append(wheel.name)
for name, files in projects.items():
    page = root / "simple" / name / "index.html"
    page.parent.mkdir(parents=True, exist_ok=True)
    links = "".join(f'<a href="../../files/{html.escape(f)}">{html.escape(f)}</a><br>\n' for f in files)
    page.write_text(f"<!DOCTYPE html><html><body>\n{links}</body></html>\n")
index = "".join(f'<a href="{n}/">{n}</a><br>\n' for n in sorted(projects))
(root / "simple" / "index.html").write_text(f"<!DOCTYPE html><html><body>\n{index}</body></html>\n")
PY
    touch "$MIRROR_DIR/.stamp-$stamp"
fi
test -e "$MIRROR_DIR/simple/setuptools/index.html"
