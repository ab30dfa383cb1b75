# syntax=docker/dockerfile:1
# The kopf operator image. Build from the repository root:
#   docker build -f docker/operator.Dockerfile -t recsys-operator:dev .

FROM python:3.12-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# Only the operator's own dependencies: no ML stack in this image.
RUN pip install "kopf>=1.37" "kubernetes>=29" "pydantic>=2.7" "pydantic-settings>=2.3" "pyyaml>=6"
COPY operator/recsys_operator /opt/operator/recsys_operator

FROM python:3.12-slim AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/opt/operator \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN groupadd --system --gid 10001 recsys \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin recsys
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/operator /opt/operator
# `recsys-operator` (the console script of the full package) is mirrored here as a wrapper.
RUN printf '#!/bin/sh\nexec python -c "from recsys_operator.main import run; run()" "$@"\n' \
      > /usr/local/bin/recsys-operator && chmod 0755 /usr/local/bin/recsys-operator
USER 10001:10001
EXPOSE 8080
ENTRYPOINT []
CMD ["recsys-operator"]
