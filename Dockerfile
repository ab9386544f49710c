# syntax=docker/dockerfile:1
#
# vision-service image. CPU by default; CUDA with one build argument:
#
#   docker build -t vision-service:cpu .
#   docker build -t vision-service:gpu --build-arg TORCH_INDEX_URL=https://pypi.org/simple .
#
# (PyPI's Linux torch wheels bundle the CUDA runtime; the host needs only the NVIDIA driver and
# the NVIDIA Container Toolkit.) Weights are never fetched at run time (YOLO_OFFLINE=1): mount
# them (-v ./models:/models:ro -e VISION_MODEL=/models/yolo11n.pt) or bake them at build time
# with --build-arg YOLO_WEIGHTS_URL=... [--build-arg YOLO_WEIGHTS_SHA256=...].
# compose/docker-compose.yml builds and runs it; see docs/deploy.md.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- builder: a virtual environment with torch, the service and its dependencies ---------------
FROM ${PYTHON_IMAGE} AS builder
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG TORCH_VERSION=2.14.1
ARG TORCHVISION_VERSION=0.29.1
# Optional extras of the package; "demo" adds scikit-image photos for `vision-service demo`.
ARG EXTRAS=demo
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH
# torch first, from the index that picks CPU or CUDA; its own layer, cached across code changes.
RUN python -m venv /opt/venv \
    && pip install --index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}" "torchvision==${TORCHVISION_VERSION}"
WORKDIR /src
COPY pyproject.toml README.md LICENSE constraints.txt ./
COPY quality ./quality
COPY vision_service ./vision_service
# The package itself, its dependencies at the versions of constraints.txt (the lock `make test` uses).
RUN pip install -c constraints.txt ".${EXTRAS:+[${EXTRAS}]}" \
    && find /opt/venv -name '__pycache__' -type d -prune -exec rm -rf {} +

# --- weights: optional, fetched at build time only --------------------------------------------
FROM ${PYTHON_IMAGE} AS weights
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG YOLO_WEIGHTS_URL=""
ARG YOLO_WEIGHTS_SHA256=""
RUN mkdir -p /weights && if [ -n "${YOLO_WEIGHTS_URL}" ]; then \
      target="/weights/$(basename "${YOLO_WEIGHTS_URL%%\?*}")" \
      && python -c 'import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])' \
           "${YOLO_WEIGHTS_URL}" "${target}" \
      && if [ -n "${YOLO_WEIGHTS_SHA256}" ]; then echo "${YOLO_WEIGHTS_SHA256}  ${target}" | sha256sum -c -; fi; \
    fi

# --- runtime: no compiler, no pip cache, non-root ---------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
# OpenCV (pulled in by Ultralytics) needs these shared libraries at import time; Debian's
# current security updates, not pinned versions.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/vision vision \
    && mkdir -p /models /data/baselines /data/evidence \
    && chown vision:vision /data/baselines /data/evidence
COPY --from=builder /opt/venv /opt/venv
COPY --from=weights /weights /opt/vision/models
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    YOLO_OFFLINE=1 \
    YOLO_CONFIG_DIR=/tmp/ultralytics \
    VISION_HOST=0.0.0.0 \
    VISION_PORT=8000 \
    VISION_MODEL=/opt/vision/models/yolo11n.pt
USER 10001:10001
WORKDIR /home/vision
EXPOSE 8000
# Liveness only: /readyz (model loaded) is what load balancers and the demo wait for.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; url = 'http://127.0.0.1:%s/healthz' % os.environ.get('VISION_PORT', '8000'); sys.exit(0 if urllib.request.urlopen(url, timeout=4).status == 200 else 1)"]
CMD ["vision-service", "serve"]
