#!/usr/bin/env bash
# `make image-test`: the Dockerfile and the compose stack, built and run for real with Podman.
#
#  1. Podman set up as ../shared/containers.md describes (runc, lowered ulimits), as root.
#  2. Local stand-ins for the images the project names, none of which can be pulled here:
#     python:3.11-slim-bookworm (Debian bookworm from debootstrap + Debian's Python 3.11),
#     prom/prometheus and prom/alertmanager (Debian's prometheus and prometheus-alertmanager).
#  3. The image from the Dockerfile (torch from $TORCH_INDEX_URL, no weights baked), run with the
#     shared weights mounted: /readyz, a detection of bus.jpg, /docs, /metrics.
#  4. compose/docker-compose.yml up with podman-compose: the service, Prometheus, Alertmanager and
#     the alert webhook (Grafana has no Debian package, so no stand-in: left out of this run).
#     Every healthcheck must pass, and Prometheus must scrape the service and load the alert rules.
#
# Everything it starts is stopped at the end; the images stay (podman rmi to delete them).
# Not part of `make test`: it needs root, Podman and ~15 GB of disk. docs/deploy.md has its output.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

VENV=${VENV:-.venv}
PY="$VENV/bin/python"
TORCH_INDEX_URL=${TORCH_INDEX_URL:-https://pypi.org/simple}
MODELS_DIR=$(cd "${VISION_MODELS_DIR:-../shared/models}" && pwd)
MODEL_FILE=${MODEL_FILE:-yolo11n.pt}
IMAGE=localhost/vision-service:cpu
PROJECT=vision-imagetest
WORK=$(mktemp -d "${TMPDIR:-/tmp}/image-test.XXXXXX")
STARTED=$(date +%s)
PIDS=()
CONTAINERS=()

say() { printf 'image-test [%4ss] %s\n' "$(($(date +%s) - STARTED))" "$*"; }
fail() { say "FAIL: $*"; exit 1; }

cleanup() {
  local rc=$?
  set +e
  say "cleanup"
  if [ -n "${COMPOSE_UP:-}" ]; then
    (cd compose && "${COMPOSE[@]}" -f "$WORK/override.yml" down -v) >"$WORK/compose-down.log" 2>&1
  fi
  for c in "${CONTAINERS[@]}"; do podman rm -f "$c" >/dev/null 2>&1; done
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT

free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

wait_until() { # wait_until SECONDS WHAT COMMAND...
  local deadline=$(($(date +%s) + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "timed out waiting for $what"
    sleep 2
  done
}

# ------------------------------------------------------------------ 1. Podman
[ "$(id -u)" = 0 ] || fail "run as root (Podman with runc, image builds): sudo make image-test"
[ -x "$PY" ] || make install-test
need=""
for p in podman runc fuse-overlayfs slirp4netns uidmap debootstrap; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need="$need $p"
done
if [ -n "$need" ]; then
  say "installing Debian packages:$need"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need
fi
if ! grep -qs 'runtime = "runc"' /etc/containers/containers.conf; then
  say "configuring Podman: runc, cgroupfs, lowered ulimits (/etc/containers/containers.conf)"
  mkdir -p /etc/containers
  cat >/etc/containers/containers.conf <<'EOF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
EOF
fi
[ -x "$VENV/bin/podman-compose" ] || "$PY" -m pip install -q -c constraints.txt podman-compose
COMPOSE=("$(cd "$VENV" && pwd)/bin/podman-compose" -p "$PROJECT" -f docker-compose.yml)
say "$(podman --version), $("${COMPOSE[0]}" --version 2>/dev/null | grep podman-compose)"

# ------------------------------------------------------------------ 2. stand-in base images
if ! podman image exists localhost/debian:bookworm; then
  say "debootstrap: Debian bookworm (minbase) from Debian's mirror"
  debootstrap --variant=minbase bookworm "$WORK/rootfs" http://deb.debian.org/debian >"$WORK/debootstrap.log" 2>&1 \
    || { tail -20 "$WORK/debootstrap.log"; fail "debootstrap"; }
  tar -C "$WORK/rootfs" -c . | podman import - localhost/debian:bookworm >/dev/null 2>&1
  rm -rf "$WORK/rootfs"
fi

standin() { # standin TAG DOCKERFILE-TEXT: build a stand-in image unless it exists
  local tag=$1 dir
  if podman image exists "$tag"; then return; fi
  dir=$(mktemp -d "$WORK/standin.XXXXXX")
  printf '%s\n' "$2" >"$dir/Dockerfile"
  cp /usr/local/share/ca-certificates/*.crt "$dir/" 2>/dev/null || true
  touch "$dir/none.crt"
  say "building stand-in $tag"
  podman build -q --format docker -t "$tag" "$dir" >/dev/null
}

standin docker.io/library/python:3.11-slim-bookworm '
FROM localhost/debian:bookworm
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 python3-pip python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && ln -s /usr/bin/python3 /usr/local/bin/python && ln -s /usr/bin/pip3 /usr/local/bin/pip
COPY *.crt /usr/local/share/ca-certificates/
RUN rm -f /usr/local/share/ca-certificates/none.crt && update-ca-certificates
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt
CMD ["python3"]'

standin docker.io/prom/prometheus:v3.5.0 '
FROM localhost/debian:bookworm
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus wget \
    && rm -rf /var/lib/apt/lists/* && mkdir -p /prometheus
WORKDIR /prometheus
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]'

standin docker.io/prom/alertmanager:v0.28.1 '
FROM localhost/debian:bookworm
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      prometheus-alertmanager wget \
    && rm -rf /var/lib/apt/lists/* && mkdir -p /alertmanager
WORKDIR /alertmanager
EXPOSE 9093
ENTRYPOINT ["/usr/bin/prometheus-alertmanager"]
CMD ["--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager"]'

# ------------------------------------------------------------------ 3. the image alone
say "podman build $IMAGE (TORCH_INDEX_URL=$TORCH_INDEX_URL, no weights baked)"
build_started=$(date +%s)
podman build --format docker -t "$IMAGE" --build-arg TORCH_INDEX_URL="$TORCH_INDEX_URL" \
  --build-arg YOLO_WEIGHTS_URL= . >"$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log"; fail "podman build"; }
say "built in $(($(date +%s) - build_started)) s: $(podman image inspect "$IMAGE" --format '{{.Size}}' \
  | awk '{printf "%.2f GB", $1 / 1e9}')"
healthcheck=$(podman image inspect "$IMAGE" --format '{{json .Config.Healthcheck.Test}}')
[ "$healthcheck" != "null" ] || fail "the image has no HEALTHCHECK (built without --format docker?)"
say "image healthcheck: ${healthcheck:0:60}..."
[ "$(podman image inspect "$IMAGE" --format '{{.Config.User}}')" = "10001:10001" ] || fail "image user is not 10001"

port=$(free_port)
container=vision-imagetest-$$
CONTAINERS+=("$container")
podman run -d --name "$container" -p "127.0.0.1:$port:8000" -v "$MODELS_DIR:/models:ro" \
  -e VISION_MODEL="/models/$MODEL_FILE" -e VISION_SOURCES=street "$IMAGE" >/dev/null 2>"$WORK/run.log" \
  || { cat "$WORK/run.log"; fail "podman run"; }
base=http://127.0.0.1:$port
ready_started=$(date +%s)
wait_until 300 "/readyz of the container" curl -sf "$base/readyz"
say "container ready in $(($(date +%s) - ready_started)) s: $(curl -s "$base/readyz")"
podman healthcheck run "$container" || fail "container healthcheck"
say "container healthcheck: $(podman inspect "$container" --format '{{.State.Health.Status}}')"

bus=$("$PY" -c 'from ultralytics.utils import ASSETS; print(ASSETS / "bus.jpg")')
curl -sf -F "image=@$bus" "$base/v1/detect?source=street" >"$WORK/detect.json" || fail "POST /v1/detect"
"$PY" - "$WORK/detect.json" <<'EOF'
import json, sys
body = json.load(open(sys.argv[1]))
classes = sorted(d["class_name"] for d in body["detections"])
print(f"image-test         bus.jpg: {body['count']} detections {classes}, brightness "
      f"{body['quality']['brightness']:.3f}, model {body['model']}")
assert classes.count("person") >= 4 and "bus" in classes, classes
EOF
curl -sf "$base/docs" | grep -q /docs/assets/swagger-ui-bundle.js || fail "/docs"
curl -sf -o /dev/null "$base/docs/assets/swagger-ui-bundle.js" || fail "/docs assets"
curl -sf "$base/metrics" >"$WORK/metrics.txt" || fail "/metrics"
grep -q 'vision_images_total{outcome="processed",reason="none",source="street"} 1.0' "$WORK/metrics.txt" \
  || fail "/metrics does not count the detection"
grep -q '^vision_model_ready 1.0' "$WORK/metrics.txt" || fail "vision_model_ready"
say "/metrics: $(grep -c '^vision_' "$WORK/metrics.txt") vision_* samples, $(grep -c '_created' "$WORK/metrics.txt") _created"
podman rm -f "$container" >/dev/null 2>&1

# ------------------------------------------------------------------ 4. the compose stack
# The stack as shipped, with host ports chosen here and the shared weights mounted; Grafana left out.
vision_port=$(free_port) prom_port=$(free_port) am_port=$(free_port)
cat >"$WORK/override.yml" <<EOF
services:
  vision-service:
    environment:
      VISION_MODEL: /models/$MODEL_FILE
EOF
export VISION_HTTP_PORT=$vision_port PROMETHEUS_PORT=$prom_port ALERTMANAGER_PORT=$am_port \
  VISION_MODELS_DIR=$MODELS_DIR TORCH_INDEX_URL YOLO_WEIGHTS_URL=
SERVICES=(vision-service prometheus alertmanager alert-webhook)
say "podman-compose up: ${SERVICES[*]} (Grafana: no stand-in image, left out)"
COMPOSE_UP=1
(cd compose && "${COMPOSE[@]}" -f "$WORK/override.yml" up -d "${SERVICES[@]}") >"$WORK/compose-up.log" 2>&1 \
  || { tail -40 "$WORK/compose-up.log"; fail "compose up"; }

# No systemd here, so nothing runs healthchecks by themselves: run each until it passes.
container_of() { podman ps -a --filter "label=io.podman.compose.project=$PROJECT" \
  --filter "label=com.docker.compose.service=$1" --format '{{.Names}}' | head -1; }
healthy() { local c; c=$(container_of "$1"); [ -n "$c" ] && podman healthcheck run "$c" \
  && [ "$(podman inspect "$c" --format '{{.State.Health.Status}}')" = healthy ]; }
for service in "${SERVICES[@]}"; do
  wait_until 300 "$service healthy" healthy "$service"
  say "$service: healthy"
done
prom=http://127.0.0.1:$prom_port
wait_until 120 "Prometheus scraping vision-service" sh -c \
  "curl -sf '$prom/api/v1/query?query=up%7Bjob%3D%22vision-service%22%7D' | grep -q '\"value\":\[[0-9.]*,\"1\"\]'"
say "Prometheus: target vision-service up"
curl -sf -F "image=@$bus" "http://127.0.0.1:$vision_port/v1/detect?source=street" >/dev/null || fail "detect via compose"
query='sum(vision_images_total{job="vision-service",outcome="processed"})'
wait_until 60 "Prometheus sees the detection" sh -c \
  "curl -sf '$prom/api/v1/query' --data-urlencode 'query=$query' | grep -q '\"value\":\[[0-9.]*,\"1\"\]'"
say "Prometheus: $query = 1"
rules=$(curl -sf "$prom/api/v1/rules" | "$PY" -c 'import json, sys; g = json.load(sys.stdin)["data"]["groups"]; print(sum(len(x["rules"]) for x in g), "rules in", len(g), "groups")')
say "Prometheus: $rules loaded"
wait_until 60 "Prometheus sees Alertmanager" sh -c \
  "curl -sf '$prom/api/v1/alertmanagers' | grep -q 'alertmanager:9093'"
say "Prometheus: Alertmanager alertmanager:9093 active"
curl -sf "http://127.0.0.1:$am_port/api/v2/status" >/dev/null || fail "Alertmanager API"
say "Alertmanager: API answers on :$am_port"
say "PASS: image built, container served bus.jpg, compose stack healthy and scraped"
