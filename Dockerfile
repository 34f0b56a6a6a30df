# syntax=docker/dockerfile:1
#
# One image for every Segue service: `segue coordinator`, `segue worker ...`.
#
#   docker build -t segue .
#   docker build -t segue-gpu --build-arg EXTRAS=postgres,gpu .   # GPU workers (torch)
#
# The entry point is `segue` itself in exec form: no shell wraps it, so the
# SIGTERM that `docker stop` (or Kubernetes) sends reaches Segue's main process,
# which shuts down warm: a worker finishes the nodes it is running first.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
# Extras of the project to install: postgres (psycopg) always; add gpu for GPU workers.
ARG EXTRAS=postgres
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/segue
WORKDIR /src
COPY pyproject.toml README.md ./
COPY nodes ./nodes
COPY orchestrator ./orchestrator
COPY workers ./workers
RUN /opt/segue/bin/pip install ".[${EXTRAS}]"

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/segue/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SEGUE_HOME=/var/lib/segue \
    SEGUE_HEARTBEAT_PATH=/var/lib/segue/heartbeat
# A fixed numeric uid, so Kubernetes' runAsNonRoot can check it. The artifacts
# folder exists (owned by segue) so a named volume mounted there starts writable.
RUN groupadd --system --gid 10001 segue \
    && useradd --system --uid 10001 --gid segue --home-dir /var/lib/segue \
       --shell /usr/sbin/nologin segue \
    && mkdir -p /var/lib/segue/artifacts \
    && chown -R segue:segue /var/lib/segue
COPY --from=build /opt/segue /opt/segue
COPY scripts/healthcheck.py /usr/local/bin/segue-healthcheck
USER 10001:10001
WORKDIR /var/lib/segue
# Liveness reads the heartbeat file the coordinator or worker writes
# (SEGUE_HEARTBEAT_PATH), never `celery inspect ping`.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "/usr/local/bin/segue-healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["segue"]
CMD ["--help"]
