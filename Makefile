# Two commands on a fresh machine:  `make serve`  and  `make test`.
PYTHON ?= python3
# Real weights when the shared folder is beside the checkout; otherwise the default name.
MODEL ?= $(firstword $(wildcard ../shared/models/yolo11n.pt) yolo11n.pt)
# Debian packages the tests start for real: Prometheus, Alertmanager, ffmpeg, GStreamer RTSP server.
APT_PACKAGES = prometheus prometheus-alertmanager ffmpeg python3-gi gir1.2-gst-rtsp-server-1.0 \
	gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad

.PHONY: install system-deps node-deps serve lint test bench k8s

install:
	$(PYTHON) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PYTHON) -m pip install -q -e '.[test,dev]'

system-deps:
	@if ! command -v promtool >/dev/null || ! command -v amtool >/dev/null || ! command -v ffmpeg >/dev/null \
		|| ! dpkg -s gir1.2-gst-rtsp-server-1.0 >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(APT_PACKAGES); \
	fi

serve: install
	VISION_MODEL=$${VISION_MODEL:-$(MODEL)} vision-service serve

lint:
	ruff check .
	ruff format --check .
	mypy

# Test-only npm package: the Prometheus Operator's CRD schemas (tests/test_k8s.py).
node-deps:
	npm ci --prefix tests/k8s_validate --no-audit --no-fund --silent

test: install system-deps node-deps lint
	YOLO_OFFLINE=1 $(PYTHON) -m pytest -q

bench:
	$(PYTHON) -m quality.bench

# Kubernetes: PrometheusRule and dashboard ConfigMaps from compose/prometheus/rules and dashboards/.
k8s:
	$(PYTHON) compose/k8s/generate.py
