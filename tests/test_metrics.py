"""Metrics follow Prometheus conventions and every label value is bounded."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from prometheus_client import Gauge, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from quality import QualityReport
from vision_service.engine import ModelInfo
from vision_service.errors import Reason
from vision_service.measurement import Detection, Measurement, StageTimes, brightness_band
from vision_service.metrics import Metrics


def measurement(source: str, brightness: float, confidences: list[float]) -> Measurement:
    return Measurement(
        source=source,
        width=640,
        height=480,
        quality=QualityReport(
            brightness=brightness,
            contrast=0.2,
            sharpness=300.0,
            noise_sigma=2.5,
            underexposed_ratio=0.01,
            overexposed_ratio=0.0,
            colourfulness=30.0,
        ),
        detections=[Detection(0, "person", c, (0.0, 0.0, 10.0, 10.0)) for c in confidences],
        times=StageTimes(decode=0.004, quality=0.001, preprocess=0.002, inference=0.05, postprocess=0.001),
        device="cpu",
    )


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(metrics.registry).decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_brightness_bands_cover_the_range() -> None:
    assert [brightness_band(b) for b in (0.0, 0.1, 0.2, 0.5, 0.9, 1.0)] == [
        "dark",
        "dark",
        "dim",
        "normal",
        "bright",
        "bright",
    ]


def test_a_measurement_lands_in_every_per_image_histogram() -> None:
    metrics = Metrics()
    metrics.record(measurement("cam-a", 0.08, [0.9, 0.5]))
    s = samples(metrics)
    for name in (
        "vision_image_brightness_ratio",
        "vision_image_contrast_ratio",
        "vision_image_sharpness",
        "vision_image_noise_sigma",
        "vision_image_underexposed_ratio",
        "vision_image_overexposed_ratio",
        "vision_image_colourfulness",
    ):
        assert s[(f"{name}_count", (("source", "cam-a"),))] == 1
    assert s[("vision_image_brightness_ratio_sum", (("source", "cam-a"),))] == 0.08
    band = (("brightness_band", "dark"), ("source", "cam-a"))
    assert s[("vision_image_detections_sum", band)] == 2
    assert s[("vision_detection_confidence_count", band)] == 2
    assert abs(s[("vision_detection_confidence_sum", band)] - 1.4) < 1e-9
    assert s[("vision_detections_total", (("class", "person"), ("source", "cam-a")))] == 2
    assert s[("vision_images_total", (("outcome", "processed"), ("reason", "none"), ("source", "cam-a")))] == 1
    assert s[("vision_stage_duration_seconds_count", (("device", "cpu"), ("stage", "inference")))] == 1


def test_brightness_buckets_span_zero_to_one_and_resolve_the_dark_end() -> None:
    metrics = Metrics()
    metrics.record(measurement("upload", 0.5, []))
    bounds = sorted(
        float(dict(labels)["le"])
        for (name, labels) in samples(metrics)
        if name == "vision_image_brightness_ratio_bucket" and dict(labels)["le"] != "+Inf"
    )
    assert bounds[0] <= 0.05 and bounds[-1] == 1.0
    assert sum(1 for b in bounds if b <= 0.3) >= 6


def test_rejections_are_counted_by_bounded_reason() -> None:
    metrics = Metrics()
    metrics.record_rejection("upload", Reason.CORRUPT_IMAGE)
    metrics.record_rejection("upload", Reason.CORRUPT_IMAGE)
    s = samples(metrics)
    assert s[("vision_images_total", (("outcome", "rejected"), ("reason", "corrupt_image"), ("source", "upload")))] == 2


def test_counters_and_units_follow_conventions() -> None:
    metrics = Metrics()
    metrics.record(measurement("upload", 0.5, [0.7]))
    metrics.model_loaded(ModelInfo(name="yolo11n.pt", device="cpu", task="detect", format="pt", load_seconds=1.5))
    text = generate_latest(metrics.registry).decode()
    for family in text_string_to_metric_families(text):
        assert family.type != "summary", family.name
        if family.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples), family.name
    assert 'vision_model_info{device="cpu",format="pt",model="yolo11n.pt",task="detect"} 1.0' in text
    assert "vision_model_ready 1.0" in text


def test_client_strings_never_become_label_values(client, bus_bytes: bytes) -> None:  # type: ignore[no-untyped-def]
    """Posting many made-up sources leaves the set of label values exactly as configured."""
    import re

    for i in range(60):
        response = client.post(
            f"/v1/detect?source=made-up-{i}", content=bus_bytes, headers={"content-type": "image/jpeg"}
        )
        assert response.status_code == 400
    client.post("/v1/detect", files={"image": ("x.jpg", bus_bytes, "image/jpeg"), "source": (None, "form-made-up")})
    text = client.get("/metrics").text
    sources = set(re.findall(r'source="([^"]*)"', text))
    assert sources <= {"upload", "cam-a", "cam-b", "unknown"}
    assert "made-up" not in text
    classes = set(re.findall(r'class="([^"]*)"', text))
    assert classes <= set(client.app.state.service.pipeline.engine.names.values())
    routes = set(re.findall(r'route="([^"]*)"', text))
    assert all(r.startswith("/") or r == "unmatched" for r in routes)
    client.get("/some/random/path/42")
    assert "/some/random/path/42" not in client.get("/metrics").text


def test_metrics_endpoint_has_no_created_series(client, bus_bytes: bytes) -> None:  # type: ignore[no-untyped-def]
    """Counters and histograms carry no `*_created` companion series (no panel or rule reads them)."""
    assert client.post("/v1/detect", files={"image": ("bus.jpg", bus_bytes, "image/jpeg")}).status_code == 200
    text = client.get("/metrics").text
    assert "vision_images_total{" in text and "vision_image_brightness_ratio_count{" in text
    assert [line for line in text.splitlines() if "_created" in line] == []


class _FrameAge:
    """What vision_service.cameras.health.CameraHealth gives camera_health: a method read at scrape time."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def new_frame_age(self) -> float:
        return self.seconds


def test_a_cameras_new_frame_age_is_bound_once_and_read_at_scrape_time(monkeypatch: pytest.MonkeyPatch) -> None:
    bound: list[Callable[[], float]] = []
    set_function = Gauge.set_function

    def recording(gauge: Gauge, f: Callable[[], float]) -> None:
        bound.append(f)
        set_function(gauge, f)

    monkeypatch.setattr(Gauge, "set_function", recording)
    metrics = Metrics()
    metrics.camera_added("cam-a", lambda: 0.0)
    key = ("vision_camera_new_frame_age_seconds", (("camera", "cam-a"),))
    assert key not in samples(metrics)  # no series before the camera's first health report
    age = _FrameAge(3.0)
    for _ in range(5):  # one report per processed frame
        metrics.camera_health("cam-a", frozenset(), {}, age.new_frame_age)
    assert samples(metrics)[key] == 3.0
    age.seconds = 7.5  # read when scraped, not when reported
    assert samples(metrics)[key] == 7.5
    assert bound.count(age.new_frame_age) == 1  # bound once, not once per frame
    other = _FrameAge(1.0)  # the camera came back with another health (another camera object, same id)
    metrics.camera_health("cam-a", frozenset(), {}, other.new_frame_age)
    assert samples(metrics)[key] == 1.0
    metrics.camera_removed("cam-a")
    assert key not in samples(metrics)
    metrics.camera_added("cam-a", lambda: 0.0)  # re-added: bound again at its first report
    metrics.camera_health("cam-a", frozenset(), {}, other.new_frame_age)
    assert samples(metrics)[key] == 1.0
    assert bound.count(other.new_frame_age) == 2
