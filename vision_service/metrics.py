"""Prometheus metric definitions and how a Measurement is recorded into them.

Every label value is bounded: sources are configured ids, classes come from the model, reasons
and stages from enums, routes are templates. Each app gets its own registry. The per-image
quality histograms are made from :data:`quality.SIGNALS`, one per signal of the report.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

import quality
from vision_service.cameras.health import KINDS as TAMPER_KINDS
from vision_service.cameras.stats import OUTCOMES as CAMERA_OUTCOMES
from vision_service.engine import ModelInfo
from vision_service.errors import Reason
from vision_service.measurement import Measurement

# Detections per image: roughly Fibonacci, from empty scenes to crowds.
DETECTION_COUNT_BUCKETS = (0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 300)
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0)
# Stage latencies from 0.1 ms (quality on GPU) to 10 s (a slow CPU batch).
STAGE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Metrics:
    """All of the service's metrics in one registry, and the ways they get recorded."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        # Each camera's vision_camera_new_frame_age_seconds function, bound once (camera_health).
        self._frame_age: dict[str, Callable[[], float]] = {}
        self._define_image_metrics()
        self._define_service_metrics()
        self._define_camera_metrics()

    def _define_image_metrics(self) -> None:
        """Per processed image, by source: each quality signal, detections and their confidence."""
        r = self.registry
        self.signals = {
            s.field: Histogram(
                f"vision_image_{s.name}", f"{s.description} Per image.", ["source"], buckets=s.buckets, registry=r
            )
            for s in quality.SIGNALS
        }
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

    def _define_service_metrics(self) -> None:
        """Latency per stage and request, batching and queueing, the model."""
        r = self.registry
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
        self.pixels_in_flight = Gauge(
            "vision_pixels_in_flight",
            "Decoded pixels of the admitted frames (from their headers), against VISION_MAX_PIXELS_IN_FLIGHT.",
            registry=r,
        )
        self.model_info = Info("vision_model", "The loaded model.", registry=r)
        self.model_ready = Gauge("vision_model_ready", "1 when the model is loaded and warm.", registry=r)
        self.model_load_seconds = Gauge(
            "vision_model_load_duration_seconds", "Seconds the last model load and warm-up took.", registry=r
        )
        self.model_load_failures = Counter("vision_model_load_failures", "Model loads that failed.", registry=r)

    def _define_camera_metrics(self) -> None:
        """Per camera id (vision_service/cameras), removed with the camera; and camera sharding."""
        r = self.registry
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
        # Camera health (vision_service/cameras/health.py): tampering and frozen pictures.
        self.camera_tampered = Gauge(
            "vision_camera_tampered",
            "1 while the camera counts as tampered with, by kind (covered, moved, defocused, obscured): the "
            "evidence held for VISION_TAMPER_MIN_SECONDS against the camera's reference scene.",
            ["camera", "kind"],
            registry=r,
        )
        self.camera_tamper_score = Gauge(
            "vision_camera_tamper_score",
            "Last frame's evidence per tampering kind against the reference scene, 1 = like the reference: "
            "moved = structural similarity of gradient maps, covered = low-res contrast ratio, defocused = "
            "sharpness ratio, obscured = contrast ratio (absent while the reference is learned).",
            ["camera", "kind"],
            registry=r,
        )
        self.camera_new_frame_age = Gauge(
            "vision_camera_new_frame_age_seconds",
            "Seconds since the camera last delivered a frame whose content changed (beyond its sensor noise) "
            "from the frame before: grows while the picture is frozen.",
            ["camera"],
            registry=r,
        )
        # Sharding (VISION_SHARD_PEERS): both stay 0 when cameras are not sharded.
        self.shard_members = Gauge(
            "vision_shard_members", "Replicas this replica sees sharing the camera list.", registry=r
        )
        self.shard_cameras = Gauge(
            "vision_shard_cameras", "Cameras of the shared list that this replica owns and reads.", registry=r
        )

    # -- images -------------------------------------------------------------------------------------

    def record(self, m: Measurement) -> None:
        """Record one processed frame (a pipeline sink)."""
        for field, histogram in self.signals.items():
            histogram.labels(m.source).observe(getattr(m.quality, field))
        band = m.brightness_band
        self.detections_per_image.labels(m.source, band).observe(len(m.detections))
        confidence = self.confidence.labels(m.source, band)
        for d in m.detections:
            confidence.observe(d.confidence)
            self.detections.labels(m.source, d.class_name).inc()
        self.images.labels(m.source, "processed", "none").inc()
        for stage, seconds in m.times.as_items():
            self.stage_seconds.labels(stage, m.device).observe(seconds)

    def forget_source(self, source: str) -> None:
        """Remove every per-image series of a source that is gone (a removed camera)."""
        for metric in (
            *self.signals.values(),
            self.detections_per_image,
            self.confidence,
            self.detections,
            self.images,
        ):
            metric.remove_by_labels({"source": source})

    def record_rejection(self, source: str, reason: Reason) -> None:
        """Count an image that was refused; ``source`` must already be an accepted id (or 'unknown')."""
        self.images.labels(source, "rejected", reason.value).inc()

    # -- service ------------------------------------------------------------------------------------

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.request_seconds.labels(route, method, str(status)).observe(seconds)

    def track_queue(self, depth: Callable[[], float], pixels: Callable[[], float]) -> None:
        """Read the queue depth and the decoded pixels in flight at scrape time."""
        self.queue_depth.set_function(depth)
        self.pixels_in_flight.set_function(pixels)

    def model_loaded(self, model: ModelInfo) -> None:
        self.model_info.info({"model": model.name, "device": model.device, "task": model.task, "format": model.format})
        self.model_load_seconds.set(model.load_seconds)
        self.model_ready.set(1)

    def model_failed(self) -> None:
        self.model_ready.set(0)
        self.model_load_failures.inc()

    # -- cameras (vision_service.cameras.stats.CameraTelemetry) -------------------------------------

    def camera_added(self, camera: str, fps: Callable[[], float]) -> None:
        """Create a camera's series at zero; ``fps`` is read at scrape time."""
        self.camera_up.labels(camera).set(0)
        for outcome in CAMERA_OUTCOMES:
            self.camera_frames.labels(camera, outcome)
        self.camera_reconnects.labels(camera)
        self.camera_fps.labels(camera).set_function(fps)
        for kind in TAMPER_KINDS:
            self.camera_tampered.labels(camera, kind).set(0)

    def camera_removed(self, camera: str) -> None:
        """Remove every series of a camera that is gone."""
        labelled: list[tuple[Gauge | Counter, tuple[str, ...]]] = [
            (self.camera_up, (camera,)),
            (self.camera_reconnects, (camera,)),
            (self.camera_last_frame, (camera,)),
            (self.camera_fps, (camera,)),
            (self.camera_new_frame_age, (camera,)),
            *((self.camera_frames, (camera, outcome)) for outcome in CAMERA_OUTCOMES),
            *((self.camera_tampered, (camera, kind)) for kind in TAMPER_KINDS),
            *((self.camera_tamper_score, (camera, kind)) for kind in TAMPER_KINDS),
        ]
        self._frame_age.pop(camera, None)
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

    def camera_health(
        self, camera: str, tampered: frozenset[str], scores: Mapping[str, float], new_frame_age: Callable[[], float]
    ) -> None:
        """A camera's health after a frame (or a reset): tampered kinds, scores (none while learning), frame age.

        ``new_frame_age`` is read at scrape time: it is bound at the camera's first report (the
        series exists from then on) and again only when the camera comes with another one.
        """
        for kind in TAMPER_KINDS:
            self.camera_tampered.labels(camera, kind).set(1 if kind in tampered else 0)
            if kind in scores:
                self.camera_tamper_score.labels(camera, kind).set(scores[kind])
            else:
                with contextlib.suppress(KeyError):
                    self.camera_tamper_score.remove(camera, kind)
        if self._frame_age.get(camera) != new_frame_age:  # equal: the same bound method of the same health
            self.camera_new_frame_age.labels(camera).set_function(new_frame_age)
            self._frame_age[camera] = new_frame_age

    def shard_changed(self, members: int, cameras: int) -> None:
        self.shard_members.set(members)
        self.shard_cameras.set(cameras)
