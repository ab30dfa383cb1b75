# syntax=docker/dockerfile:1
# The services image: `recsys api|collector|ingest|train --once|trainer`.
# Build from the repository root:  docker build -f docker/services.Dockerfile -t recsys:dev .

FROM python:3.12-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# Compilers only in this stage: lightfm-next builds a C extension.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY services ./services
COPY operator ./operator
RUN pip install .

FROM python:3.12-slim AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    RECSYS_DATA_DIR=/var/lib/recsys
# Fixed non-root uid/gid 10001, matching the charts' securityContext.
RUN groupadd --system --gid 10001 recsys \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin recsys \
 && mkdir -p /var/lib/recsys && chown 10001:10001 /var/lib/recsys
COPY --from=build /opt/venv /opt/venv
USER 10001:10001
# Works with readOnlyRootFilesystem: writes go only to /tmp and the data volume (mounted).
VOLUME ["/var/lib/recsys"]
# 5010 and 5011: the collector's and the api's probe ports (services/common/health_server.py).
EXPOSE 5000 5001 5010 5011 9100
ENTRYPOINT ["recsys"]
CMD ["api"]
