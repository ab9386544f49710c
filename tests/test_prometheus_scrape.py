"""A real Prometheus scrapes the running service; the PromQL the dashboards use returns values.

Deterministic on any machine speed: ``rate()`` needs two samples of a series that differ, so the
test waits for a scrape that has seen a first image of each source, sends the measured images,
then waits for a scrape that has seen all of them. The two scrapes straddle the uploads, so every
rate below is positive, and a NaN (0/0, a series with one sample) is never accepted as a value.
"""

from __future__ import annotations

import math
import urllib.request
from pathlib import Path

import numpy as np

from quality.simulate import low_light
from tests.conftest import encode_jpeg
from tests.infra import Prometheus, prometheus, vision_service, wait_for

SOURCES = ("street", "garage")
MEASURED = 3  # images per source between the two scrapes


def post_image(base: str, data: bytes, source: str) -> None:
    request = urllib.request.Request(
        f"{base}/v1/detect?source={source}", data=data, headers={"content-type": "image/jpeg"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 200


def finite_by_source(prom: Prometheus, promql: str) -> dict[str, float]:
    """The query's value per source, NaN and infinities left out."""
    values = {r["metric"]["source"]: float(r["value"][1]) for r in prom.query(promql)}
    return {source: value for source, value in values.items() if math.isfinite(value)}


def wait_for_scraped_counts(prom: Prometheus, count: int) -> None:
    """Wait until Prometheus has scraped exactly ``count`` images of every source."""

    def scraped() -> bool:
        counts = finite_by_source(prom, "sum by (source) (vision_image_brightness_ratio_count)")
        return counts == dict.fromkeys(SOURCES, float(count))

    wait_for(scraped, timeout=60, what=f"a scrape with {count} images of each of {SOURCES}")


def test_prometheus_sees_brightness_per_source_and_inference_p95(
    tmp_path: Path, model_path: str, bus_bgr: np.ndarray
) -> None:
    day = encode_jpeg(bus_bgr)
    night = encode_jpeg(low_light(bus_bgr, light=0.05, rng=np.random.default_rng(1)))
    image = {"street": day, "garage": night}
    with vision_service(tmp_path, model=model_path, env={"VISION_SOURCES": ",".join(SOURCES)}) as base:
        target = base.removeprefix("http://")
        with prometheus(tmp_path, [target]) as prom:
            # Scrape 1: every series exists, at one image per source.
            for source in SOURCES:
                post_image(base, image[source], source)
            wait_for_scraped_counts(prom, 1)
            # Scrape 2: the measured images, all seen.
            for _ in range(MEASURED):
                for source in SOURCES:
                    post_image(base, image[source], source)
            wait_for_scraped_counts(prom, 1 + MEASURED)

            mean = (
                "sum by (source) (rate(vision_image_brightness_ratio_sum[1m]))"
                " / sum by (source) (rate(vision_image_brightness_ratio_count[1m]))"
            )
            brightness = finite_by_source(prom, mean)
            assert set(brightness) == set(SOURCES), f"{mean} -> {prom.query(mean)}"
            assert 0 < brightness["garage"] < brightness["street"] < 1

            p95 = (
                "histogram_quantile(0.95, sum by (le, device) "
                '(rate(vision_stage_duration_seconds_bucket{stage="inference"}[1m])))'
            )
            rows = prom.query(p95)
            assert [row["metric"]["device"] for row in rows] == ["cpu"], rows
            assert 0 < float(rows[0]["value"][1]) < 30  # a NaN fails here too
