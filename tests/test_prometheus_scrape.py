"""A real Prometheus scrapes the running service; the PromQL the dashboards use returns values."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import numpy as np

from quality.simulate import low_light
from tests.conftest import encode_jpeg
from tests.infra import prometheus, vision_service, wait_for


def post_image(base: str, data: bytes, source: str) -> None:
    request = urllib.request.Request(
        f"{base}/v1/detect?source={source}", data=data, headers={"content-type": "image/jpeg"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 200


def test_prometheus_sees_brightness_per_source_and_inference_p95(
    tmp_path: Path, model_path: str, bus_bgr: np.ndarray
) -> None:
    day = encode_jpeg(bus_bgr)
    night = encode_jpeg(low_light(bus_bgr, light=0.05, rng=np.random.default_rng(1)))
    with vision_service(tmp_path, model=model_path, env={"VISION_SOURCES": "street,garage"}) as base:
        target = base.removeprefix("http://")
        with prometheus(tmp_path, [target]) as prom:
            for _ in range(3):
                post_image(base, day, "street")
                post_image(base, night, "garage")

            mean = (
                "sum by (source) (rate(vision_image_brightness_ratio_sum[1m]))"
                " / sum by (source) (rate(vision_image_brightness_ratio_count[1m]))"
            )

            def both_sources() -> dict[str, float] | None:
                rows = prom.query(mean)
                values = {r["metric"]["source"]: float(r["value"][1]) for r in rows}
                return values if {"street", "garage"} <= set(values) else None

            brightness = wait_for(both_sources, timeout=60, what="brightness per source in Prometheus")
            assert 0 < brightness["garage"] < brightness["street"] < 1

            p95 = (
                "histogram_quantile(0.95, sum by (le, device) "
                '(rate(vision_stage_duration_seconds_bucket{stage="inference"}[1m])))'
            )
            rows = wait_for(lambda: prom.query(p95), timeout=30, what="inference p95")
            assert rows[0]["metric"]["device"] == "cpu"
            assert 0 < float(rows[0]["value"][1]) < 30
