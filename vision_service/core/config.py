"""The one settings object, read from ``VISION_*`` environment variables (and CLI flags)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Source ids become Prometheus label values, so they are short and plain.
SOURCE_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
UPLOAD_SOURCE = "upload"
# Most scans a (progressive) JPEG may have, by default (VISION_MAX_JPEG_SCANS, engine.DecodeLimits).
MAX_JPEG_SCANS = 64


class Settings(BaseSettings):
    """Everything the service can be told. Each field maps to ``VISION_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="VISION_", env_file=None, extra="ignore")

    host: str = Field("0.0.0.0", description="Bind address of the HTTP server.")
    port: int = Field(8000, ge=1, le=65535, description="Bind port of the HTTP server.")
    model: str = Field(
        "yolo11n.pt",
        description="Ultralytics weights (.pt, .onnx, .tflite) or a model .yaml (random weights).",
    )
    device: str = Field("auto", description="'auto' (CUDA when present), 'cpu' or 'cuda:N'.")
    confidence: float = Field(0.25, ge=0.0, le=1.0, description="Minimum detection confidence.")
    iou: float = Field(0.7, ge=0.0, le=1.0, description="NMS IoU threshold.")
    image_size: int = Field(640, ge=32, le=4096, description="Inference size (longer side), pixels.")
    analysis_size: int = Field(640, ge=32, le=4096, description="Quality analysis size (longer side).")
    max_upload_bytes: int = Field(20 * 1024 * 1024, ge=1, description="Largest accepted image, bytes.")
    max_image_pixels: int = Field(
        40_000_000,
        ge=1,
        description="Largest width x height of an upload (from its header) or of a camera frame.",
    )
    max_request_pixels: int = Field(
        48_000_000, ge=1, description="Most pixels of all images of one request together, from their headers (413)."
    )
    max_pixels_in_flight: int = Field(
        64_000_000,
        ge=1,
        description="Most decoded pixels the whole process may hold for admitted frames (uploads and cameras); "
        "a request that would pass it is refused at once (503 pixel_budget_full), a camera frame dropped.",
    )
    max_jpeg_scans: int = Field(
        MAX_JPEG_SCANS,
        ge=1,
        le=10_000,
        description="Most scans a (progressive) JPEG may have; each one costs a decoding pass.",
    )
    max_batch_images: int = Field(32, ge=1, le=1024, description="Most images in one batch request.")
    max_pending_frames: int = Field(
        32, ge=1, description="Frames that may wait for the detector; beyond this, 503 + Retry-After."
    )
    max_batch: int = Field(
        16, ge=1, le=256, description="Most frames per detector call; concurrent requests and cameras share calls."
    )
    max_batch_wait_ms: float = Field(
        2.0,
        ge=0,
        le=1000,
        description=(
            "Longest wait of a batch's first frame for more frames before the detector call, milliseconds;"
            " it waits only while other admitted frames are still being decoded."
        ),
    )
    device_path: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Decode JPEG, letterbox, measure quality and run NMS on the model's device (docs/gpu.md): "
        "auto = on with CUDA, off on CPU. Only .pt weights and .yaml models; other formats use Ultralytics' path.",
    )
    sources: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Extra source ids accepted by /v1/detect besides 'upload' (comma-separated).",
    )
    cameras_file: Path | None = Field(None, description="YAML file of cameras to read at start.")
    cameras_persist: bool = Field(
        False, description="Write camera changes made over the API back to cameras_file (atomic rewrite)."
    )
    cameras_api: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Adding and removing cameras over /v1/cameras: auto = only with VISION_API_KEY set; "
        "on = also without a key (anyone who reaches the port can make the service open URLs); off = never.",
    )
    local_source_dirs: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Folders (comma-separated) whose video files cameras added over the API may read; none by "
        "default. The camera file (VISION_CAMERAS_FILE) may name any local file or device.",
    )
    camera_ca_file: Path | None = Field(
        None,
        description="CA bundle (PEM) that https:// and rtsps:// camera certificates are verified against "
        "(default: the system's bundle). A camera may opt out with tls_verify: false.",
    )
    max_cameras: int = Field(16, ge=0, le=256, description="Most cameras, from the file and the API together.")
    camera_timeout_seconds: float = Field(
        5.0, gt=0, le=120, description="Longest wait to open a camera stream or read one frame before it fails."
    )
    camera_reconnect_min_seconds: float = Field(
        0.5, gt=0, le=3600, description="First reconnect delay after a camera fails; doubles per failed attempt."
    )
    camera_reconnect_max_seconds: float = Field(
        15.0, gt=0, le=3600, description="Cap of the reconnect delay (each delay has jitter: 50-100% of its step)."
    )
    shard_peers: str | None = Field(
        None,
        pattern=r"^(count|file|dns):.+$",
        description="Camera sharding across replicas (docs/kubernetes.md): where the member list comes from, "
        "count:N (members 0..N-1), file:PATH (one id per line) or dns:NAME (the addresses NAME resolves to). "
        "Every replica reads the same cameras_file and runs only the cameras it owns. Unset: no sharding.",
    )
    shard_id: str | None = Field(
        None, max_length=256, description="This replica's member id (an ordinal, or the pod IP with dns:)."
    )
    shard_refresh_seconds: float = Field(
        10.0, gt=0, le=3600, description="How often the member list and the camera file are read again when sharded."
    )
    tamper_min_seconds: float = Field(
        20.0,
        ge=0,
        le=86400,
        description="Camera tampering (covered, moved, defocused, obscured) counts once its evidence held this many "
        "seconds, and clears once it has been gone as long (docs/camera-health.md).",
    )
    tamper_reference_frames: int = Field(
        20,
        ge=1,
        le=10_000,
        description="A camera's reference scene for tampering is learned from the first N frames of each regime "
        "(day, night); DELETE /v1/cameras/{id}/reference learns it again.",
    )
    baseline_dir: Path | None = Field(
        None,
        description="Directory of drift baselines, one <source>.json each: loaded at start; "
        "learned baselines are written here (unset: learned ones are kept in memory only).",
    )
    baseline_learn_frames: int = Field(
        0, ge=0, description="Learn a source's baseline from its first N frames when it has none (0 = off)."
    )
    drift_window_frames: int = Field(
        500, ge=10, le=100_000, description="Frames per source in the rolling window compared with its baseline."
    )
    thresholds_file: Path | None = Field(
        None,
        description="Prometheus rules file with the vision:threshold:* constants that the conditions of the API "
        "and the live page compare against (e.g. the thresholds.yml your Prometheus loads); unset: the copy "
        "shipped in the package, identical to compose/prometheus/rules/thresholds.yml.",
    )
    evidence_enabled: bool = Field(
        True,
        description="Keep sample frames per source (latest, darkest, blurriest, noisiest, lowest confidence, "
        "and the frames where a condition began) for /v1/sources/{id}/samples and the live page (docs/evidence.md).",
    )
    evidence_dir: Path | None = Field(
        None,
        description="Directory of the evidence frames (a JPEG and a JSON file each, one folder per source), kept "
        "across restarts; unset: they are kept in memory only.",
    )
    evidence_max_bytes: int = Field(
        64 * 1024 * 1024,
        ge=64 * 1024,
        description="Size cap of the evidence frames (images and their JSON), bytes; the oldest go first.",
    )
    evidence_max_age_hours: float = Field(
        24.0, gt=0, le=24 * 366, description="Evidence frames older than this are deleted, hours."
    )
    evidence_max_side: int = Field(
        640, ge=64, le=4096, description="Longer side of a kept evidence frame, pixels (downscaled, never enlarged)."
    )
    api_key: SecretStr | None = Field(
        None, description="When set, detection and camera routes require this value in the X-API-Key header."
    )
    metrics_port: int | None = Field(
        None, ge=1, le=65535, description="Serve /metrics on this port (same host) instead of the API port."
    )
    body_timeout_seconds: float = Field(
        30.0, gt=0, description="Longest pause while a request body streams in before it is refused (408)."
    )
    body_deadline_seconds: float = Field(
        120.0, gt=0, description="Longest time a whole request body may take to arrive, however it trickles (408)."
    )
    header_timeout_seconds: float = Field(
        10.0, gt=0, description="Longest time a connection may take to send a request's headers before it is closed."
    )
    max_header_bytes: int = Field(
        64 * 1024, ge=4096, description="Largest request line plus headers; beyond it the connection gets 431."
    )
    max_connections: int = Field(
        512, ge=8, description="Most open connections and requests at once; beyond it new ones get 503."
    )
    shutdown_drain_seconds: float = Field(
        5.0,
        ge=0,
        description="On SIGTERM, how long /readyz answers 503 while the service still serves, so load "
        "balancers stop sending before it stops listening.",
    )
    shutdown_timeout_seconds: float = Field(
        30.0, gt=0, description="Longest wait for requests in flight after the service stops listening."
    )
    metrics_require_key: bool = Field(
        False,
        description="With VISION_API_KEY set, also require it for /metrics (X-API-Key or Authorization: Bearer). "
        "Off by default: /metrics holds numbers and ids, no images or URLs, and Prometheus usually scrapes from "
        "inside the trust boundary.",
    )
    api_docs: bool = Field(True, description="Serve /docs and /openapi.json (they describe the API, no data).")
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("sources", "local_source_dirs", mode="before")
    @classmethod
    def _split_sources(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("sources")
    @classmethod
    def _check_sources(cls, value: list[str]) -> list[str]:
        for source in value:
            if not SOURCE_ID_PATTERN.match(source):
                raise ValueError(
                    f"source id {source!r} must match {SOURCE_ID_PATTERN.pattern} "
                    "(lower-case letters, digits, '-' and '_', at most 63 characters)"
                )
        return value

    @field_validator("device")
    @classmethod
    def _check_device(cls, value: str) -> str:
        if value not in ("auto", "cpu") and not re.fullmatch(r"cuda(:\d+)?", value):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda:N', got {value!r}")
        return value

    @model_validator(mode="after")
    def _shard_needs_an_id(self) -> Settings:
        if self.shard_peers is not None and not (self.shard_id or "").strip():
            raise ValueError("VISION_SHARD_ID (this replica's member id) is required with VISION_SHARD_PEERS")
        if self.shard_peers is not None and self.cameras_persist:
            raise ValueError("VISION_CAMERAS_PERSIST cannot be used with sharding: replicas share one camera file")
        if self.metrics_require_key and self.metrics_port is not None:
            raise ValueError(
                "VISION_METRICS_REQUIRE_KEY protects /metrics on the API port; the separate VISION_METRICS_PORT "
                "cannot check a key (restrict who reaches that port instead)"
            )
        return self
