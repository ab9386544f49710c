"""Prometheus metric definitions and how a Measurement is recorded into them.

Every label value is bounded: sources are configured ids, classes come from the model, reasons
and stages from enums, routes are templates. Each app gets its own registry.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from vision_service.errors import Reason
from vision_service.measurement import Measurement

# Buckets follow each signal's real range (see quality.report for formulas):
# brightness is mean luma/255 in [0, 1]; finer steps at the dark end where low light lives.
BRIGHTNESS_BUCKETS = (
    0.02,
    0.05,
    0.08,
    0.1,
    0.125,
    0.15,
    0.2,
    0.25,
    0.3,
    0.35,
    0.4,
    0.45,
    0.5,
    0.55,
    0.6,
    0.7,
    0.8,
    0.9,
    1.0,
)
# RMS contrast (std of luma/255) rarely exceeds 0.35 in photographs; 0.5 is the theoretical max.
CONTRAST_BUCKETS = (0.02, 0.04, 0.06, 0.08, 0.1, 0.125, 0.15, 0.175, 0.2, 0.25, 0.3, 0.4, 0.5)
# Variance of the Laplacian spans decades (blurred ~10, sharp street scene ~1000+): log-spaced.
SHARPNESS_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000)
# Noise sigma in 8-bit grey levels: clean daylight 1-3, night with gain 8-30.
NOISE_BUCKETS = (0.5, 1, 1.5, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50)
# Clipped-pixel fractions: most frames clip almost nothing, so resolve the low end finely.
EXPOSURE_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0)
# Detections per image: roughly Fibonacci, from empty scenes to crowds.
DETECTION_COUNT_BUCKETS = (0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 300)
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0)
# Stage latencies from 0.1 ms (quality on GPU) to 10 s (a slow CPU batch).
STAGE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


# vision_camera_frames_total outcomes.
CAMERA_OUTCOMES = ("processed", "dropped", "failed")


class Metrics:
    """All of the service's metrics in one registry, and the ways they get recorded."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry

        def image_histogram(name: str, doc: str, buckets: tuple[float, ...]) -> Histogram:
            return Histogram(name, doc, ["source"], buckets=buckets, registry=r)

        self.brightness = image_histogram(
            "vision_image_brightness_ratio", "Mean Rec.601 luma / 255 per image.", BRIGHTNESS_BUCKETS
        )
        self.contrast = image_histogram(
            "vision_image_contrast_ratio", "RMS contrast (std of luma / 255) per image.", CONTRAST_BUCKETS
        )
        self.sharpness = image_histogram(
            "vision_image_sharpness",
            "Variance of the Laplacian of luma per image (low = blurry).",
            SHARPNESS_BUCKETS,
        )
        self.noise = image_histogram(
            "vision_image_noise_sigma",
            "Estimated additive noise std per image, 8-bit grey levels.",
            NOISE_BUCKETS,
        )
        self.underexposed = image_histogram(
            "vision_image_underexposed_ratio", "Fraction of pixels clipped dark per image.", EXPOSURE_BUCKETS
        )
        self.overexposed = image_histogram(
            "vision_image_overexposed_ratio", "Fraction of pixels clipped bright per image.", EXPOSURE_BUCKETS
        )
        self.detections_per_image = Histogram(
            "vision_image_detections",
            "Detections per image, by source and brightness band.",
            ["source", "brightness_band"],
            buckets=DETECTION_COUNT_BUCKETS,
            registry=r,
        )
        self.confidence = Histogram(
            "vision_detection_confidence",
            "Confidence of each detection, by source and brightness band.",
            ["source", "brightness_band"],
            buckets=CONFIDENCE_BUCKETS,
            registry=r,
        )
        self.detections = Counter(
            "vision_detections", "Detections by source and model class.", ["source", "class"], registry=r
        )
        self.images = Counter(
            "vision_images",
            "Images by source and outcome; rejected ones carry a bounded reason.",
            ["source", "outcome", "reason"],
            registry=r,
        )
        self.stage_seconds = Histogram(
            "vision_stage_duration_seconds",
            "Seconds per pipeline stage per image.",
            ["stage", "device"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.request_seconds = Histogram(
            "vision_request_duration_seconds",
            "HTTP request latency by route template.",
            ["route", "method", "status"],
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram("vision_batch_size", "Frames per detector call.", buckets=BATCH_BUCKETS, registry=r)
        self.queue_depth = Gauge(
            "vision_queue_depth", "Frames admitted and waiting for or inside the detector.", registry=r
        )
        self.model_info = Info("vision_model", "The loaded model.", registry=r)
        self.model_ready = Gauge("vision_model_ready", "1 when the model is loaded and warm.", registry=r)
        self.model_load_seconds = Gauge(
            "vision_model_load_duration_seconds", "Seconds the last model load and warm-up took.", registry=r
        )
        self.model_load_failures = Counter("vision_model_load_failures", "Model loads that failed.", registry=r)
        # Cameras (vision_service/cameras): series per camera id, removed with the camera.
        self.camera_up = Gauge(
            "vision_camera_up",
            "1 while the camera delivers frames; 0 while connecting, down or disabled.",
            ["camera"],
            registry=r,
        )
        self.camera_frames = Counter(
            "vision_camera_frames",
            "Sampled camera frames by outcome: processed; dropped (detector busy: replaced by a newer frame); "
            "failed (read, decode or processing error).",
            ["camera", "outcome"],
            registry=r,
        )
        self.camera_reconnects = Counter(
            "vision_camera_reconnects", "Attempts to reopen a camera stream after it failed.", ["camera"], registry=r
        )
        self.camera_last_frame = Gauge(
            "vision_camera_last_frame_timestamp_seconds",
            "Unix time of the last frame read from the camera.",
            ["camera"],
            registry=r,
        )
        self.camera_fps = Gauge(
            "vision_camera_fps", "Camera frames processed per second over the last 10 s.", ["camera"], registry=r
        )
        # Sharding (VISION_SHARD_PEERS): both stay 0 when cameras are not sharded.
        self.shard_members = Gauge(
            "vision_shard_members", "Replicas this replica sees sharing the camera list.", registry=r
        )
        self.shard_cameras = Gauge(
            "vision_shard_cameras", "Cameras of the shared list that this replica owns and reads.", registry=r
        )

    def record(self, m: Measurement) -> None:
        """Record one processed frame."""
        q = m.quality
        self.brightness.labels(m.source).observe(q.brightness)
        self.contrast.labels(m.source).observe(q.contrast)
        self.sharpness.labels(m.source).observe(q.sharpness)
        self.noise.labels(m.source).observe(q.noise_sigma)
        self.underexposed.labels(m.source).observe(q.underexposed_ratio)
        self.overexposed.labels(m.source).observe(q.overexposed_ratio)
        band = m.brightness_band
        self.detections_per_image.labels(m.source, band).observe(len(m.detections))
        confidence = self.confidence.labels(m.source, band)
        for d in m.detections:
            confidence.observe(d.confidence)
            self.detections.labels(m.source, d.class_name).inc()
        self.images.labels(m.source, "processed", "none").inc()
        for stage, seconds in m.times.as_items():
            self.stage_seconds.labels(stage, m.device).observe(seconds)

    def record_rejection(self, source: str, reason: Reason) -> None:
        """Count an input that was refused; ``source`` must already be a known id."""
        self.images.labels(source, "rejected", reason.value).inc()

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.request_seconds.labels(route, method, str(status)).observe(seconds)

    def track_queue(self, depth: Callable[[], float]) -> None:
        self.queue_depth.set_function(depth)

    def model_loaded(self, *, model: str, device: str, task: str, fmt: str, seconds: float) -> None:
        self.model_info.info({"model": model, "device": device, "task": task, "format": fmt})
        self.model_load_seconds.set(seconds)
        self.model_ready.set(1)

    def model_failed(self) -> None:
        self.model_ready.set(0)
        self.model_load_failures.inc()

    def camera_added(self, camera: str, fps: Callable[[], float]) -> None:
        """Create a camera's series at zero; ``fps`` is read at scrape time."""
        self.camera_up.labels(camera).set(0)
        for outcome in CAMERA_OUTCOMES:
            self.camera_frames.labels(camera, outcome)
        self.camera_reconnects.labels(camera)
        self.camera_fps.labels(camera).set_function(fps)

    def camera_removed(self, camera: str) -> None:
        """Remove every series of a camera that is gone."""
        labelled: list[tuple[Gauge | Counter, tuple[str, ...]]] = [
            (self.camera_up, (camera,)),
            (self.camera_reconnects, (camera,)),
            (self.camera_last_frame, (camera,)),
            (self.camera_fps, (camera,)),
            *((self.camera_frames, (camera, outcome)) for outcome in CAMERA_OUTCOMES),
        ]
        for metric, labels in labelled:
            with contextlib.suppress(KeyError):  # never created (e.g. no frame read yet)
                metric.remove(*labels)

    def camera_status(self, camera: str, up: bool) -> None:
        self.camera_up.labels(camera).set(1 if up else 0)

    def camera_frame(self, camera: str, outcome: str) -> None:
        self.camera_frames.labels(camera, outcome).inc()

    def camera_reconnect(self, camera: str) -> None:
        self.camera_reconnects.labels(camera).inc()

    def camera_frame_read(self, camera: str, timestamp: float) -> None:
        self.camera_last_frame.labels(camera).set(timestamp)

    def shard_changed(self, members: int, cameras: int) -> None:
        self.shard_members.set(members)
        self.shard_cameras.set(cameras)
