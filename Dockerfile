# The matrixon-resource-monitor image: poolwatch in a venv on a slim Python, run as uid 10001.
#
#   docker build -t poolwatch .
#   docker build --build-arg PIP_INDEX_URL=https://pypi.example.internal/simple -t poolwatch .
#
# BASE_IMAGE: any Debian-like image with python3 (>= 3.11) and its venv module. Both stages use
# it, so the venv's link to the interpreter stays valid in the runtime stage.
ARG BASE_IMAGE=python:3.11-slim

# --- build: a wheel of poolwatch, installed with its dependencies into /opt/poolwatch ---------
FROM ${BASE_IMAGE} AS build
# pip reads PIP_INDEX_URL from the environment; build arguments are in the RUN environment
ARG PIP_INDEX_URL=https://pypi.org/simple
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python3 -m venv /opt/poolwatch
# dependencies first, from pyproject.toml alone: a change of source only rebuilds the last layer
COPY pyproject.toml ./
RUN python3 -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' > /tmp/requirements.txt \
    && /opt/poolwatch/bin/pip install --no-cache-dir --requirement /tmp/requirements.txt
COPY README.md ./
COPY src/ src/
RUN /opt/poolwatch/bin/pip wheel --no-cache-dir --no-deps --wheel-dir /tmp/wheels . \
    && /opt/poolwatch/bin/pip install --no-cache-dir --no-deps /tmp/wheels/poolwatch-*.whl \
    && /opt/poolwatch/bin/pip uninstall --yes pip setuptools \
    && /opt/poolwatch/bin/poolwatch --version

# --- runtime: the base image, a user, and the venv ---------------------------------------------
FROM ${BASE_IMAGE}
ARG BASE_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
ARG UID=10001
LABEL org.opencontainers.image.title="poolwatch" \
      org.opencontainers.image.description="matrixon-resource-monitor: watches PostgreSQL and Redis connection pools, host resources and Docker containers; emits JSON events on thresholds." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"

# A fixed uid/gid, so host files (secrets, the state volume) can be granted to it by number.
RUN groupadd --system --gid "${UID}" poolwatch \
    && useradd --system --no-log-init --uid "${UID}" --gid "${UID}" \
        --home-dir /var/lib/poolwatch --no-create-home --shell /usr/sbin/nologin poolwatch \
    && mkdir -p /var/lib/poolwatch \
    && chown "${UID}:${UID}" /var/lib/poolwatch \
    && chmod 0700 /var/lib/poolwatch
COPY --from=build /opt/poolwatch /opt/poolwatch

ENV PATH=/opt/poolwatch/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    POOLWATCH_STATE_DIR=/var/lib/poolwatch \
    POOLWATCH_LOG_FORMAT=json \
    MALLOC_ARENA_MAX=2
# MALLOC_ARENA_MAX: glibc gives each of the daemon's threads (Docker API workers, queue writers)
# its own malloc arena; two are plenty here (75.1 -> 70.4 MiB RSS at 200 containers,
# docs/performance.md).
# The only place poolwatch writes (heartbeat, webhook delivery queue): the root fs can be read-only.
VOLUME ["/var/lib/poolwatch"]
WORKDIR /var/lib/poolwatch
USER ${UID}:${UID}

# SIGTERM: poolwatch stops polling and flushes its sinks within shutdown_timeout (5s by default),
# well inside `docker stop`'s 10s.
STOPSIGNAL SIGTERM
# Liveness of poolwatch itself (its loops turn, its sinks take events), never of the systems it
# watches: a busy PostgreSQL must not get the monitor restarted. `poolwatch --once` is the stack check.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["poolwatch", "--healthcheck"]
ENTRYPOINT ["poolwatch"]
