"""Building a baseline from reference images or a recorded stream, exactly as the service would measure them.

Inputs are image files (folders are searched recursively), video files (a recorded stream:
``.mp4 .mkv .avi .mov .webm .ts .m4v .mjpg .mjpeg``) or a live stream URL (``rtsp://``,
``rtsps://``, ``http://``, ``https://``). Videos and streams are sampled at one frame per
``every_seconds`` of their own time. Every frame runs through the engine the settings describe
(:func:`vision_service.engine.factory.load_engine`: ``VISION_MODEL``, ``VISION_DEVICE``,
``VISION_DEVICE_PATH``, thresholds and sizes), the engine the service measures live frames with, so
drift compares like with like.

With a :class:`~vision_service.regimes.RegimeRule` each frame is sorted into its regime (day,
night, optional hour buckets) by its own quality report and the local hour it was taken at: an
image file's modification time, a video frame's position after ``start`` (default: the file's
modification time minus its duration, i.e. when the recording began), the wall clock for a live
stream.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from quality import QualityReport
from vision_service.core.config import Settings
from vision_service.drift.baseline import Baseline
from vision_service.drift.frame_values import FrameSignals, frame_signals
from vision_service.drift.tracker import detector_settings
from vision_service.engine import Engine
from vision_service.engine.factory import load_engine
from vision_service.errors import ImageRejected
from vision_service.regimes import RegimeRule

log = logging.getLogger(__name__)

# Reference files are trusted local files: far larger than an upload may be.
MAX_FILE_BYTES = 1 << 31
MAX_FILE_PIXELS = 1 << 31
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"})
VIDEO_SUFFIXES = frozenset({".mp4", ".mkv", ".avi", ".mov", ".webm", ".ts", ".m4v", ".mjpg", ".mjpeg"})
STREAM_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://")
# Longest wait to open a live stream or read one frame from it.
STREAM_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class BuildResult:
    baseline: Baseline
    failed: list[tuple[str, str]]  # inputs (files, or a video position) that could not be used, and why


def is_stream(text: str) -> bool:
    return text.lower().startswith(STREAM_SCHEMES)


def expand(inputs: Sequence[str], suffixes: frozenset[str] = IMAGE_SUFFIXES | VIDEO_SUFFIXES) -> list[str]:
    """Files of folders with one of ``suffixes`` (recursively, sorted), files and stream URLs as given."""
    out: list[str] = []
    for item in inputs:
        path = Path(item)
        if not is_stream(item) and path.is_dir():
            out.extend(str(p) for p in sorted(path.rglob("*")) if p.suffix.lower() in suffixes)
        else:
            out.append(item)
    return out


def build_baseline(
    inputs: Sequence[str],
    source: str,
    settings: Settings,
    *,
    origin: str,
    rule: RegimeRule | None = None,
    every_seconds: float = 1.0,
    max_frames: int = 0,
    start: float | None = None,
    fit_noise: bool = False,
    progress: bool | None = None,
) -> BuildResult:
    """Measure and detect every image and sampled video frame; return the baseline of those that could be used.

    ``rule`` None builds a single-regime baseline; with ``fit_noise`` the rule's ``day_noise`` is
    fitted to these frames first (:meth:`~vision_service.regimes.RegimeRule.fitted`). ``max_frames``
    (0 = no limit) caps the frames taken from each video or stream, ``start`` (Unix time) is when a
    recorded video began.
    ``progress``: show a tqdm bar on stderr (None: only when stderr is a terminal).
    Raises :class:`ValueError` when no input could be used, and
    :class:`vision_service.engine.factory.ModelLoadError` when the model cannot be loaded.
    """
    trusted = {"max_upload_bytes": MAX_FILE_BYTES, "max_image_pixels": MAX_FILE_PIXELS}
    engine = load_engine(settings.model_copy(update=trusted))
    frames: list[FrameSignals] = []
    shots: list[tuple[QualityReport, float]] = []  # each frame's report and when it was taken
    failed: list[tuple[str, str]] = []
    disable = None if progress is None else not progress
    bar = tqdm(inputs, desc=f"baseline {source}", unit="input", disable=disable, file=sys.stderr)
    for item in bar:
        if is_stream(item) or Path(item).suffix.lower() in VIDEO_SUFFIXES:
            found = _video_frames(engine, item, source, every_seconds, max_frames, start, failed)
        else:
            found = _image_frame(engine, item, source, failed)
        for frame, taken in found:
            (result,) = engine.run([frame]).results
            frames.append(frame_signals(result.quality, result.detections))
            shots.append((result.quality, taken))
            bar.set_postfix(frames=len(frames), refresh=False)
    if not frames:
        raise ValueError(f"none of the {len(inputs)} inputs gave a usable frame")
    regimes: list[str] = []
    if rule is not None:
        if fit_noise:
            rule = rule.fitted(report for report, _ in shots)
        regimes = [rule.regime(report, time.localtime(taken).tm_hour) for report, taken in shots]
    baseline = Baseline.from_frames(
        source,
        frames,
        origin=origin,
        settings=detector_settings(settings),
        rule=rule,
        regimes=regimes if rule is not None else None,
    )
    return BuildResult(baseline=baseline, failed=failed)


def _image_frame(
    engine: Engine[Any], path: str, source: str, failed: list[tuple[str, str]]
) -> Iterator[tuple[Any, float]]:
    try:
        data = Path(path).read_bytes()
        taken = os.stat(path).st_mtime
    except OSError as exc:
        failed.append((path, str(exc)))
        return
    (frame,) = engine.decode([data], source=source)
    if isinstance(frame, ImageRejected):
        failed.append((path, str(frame)))
        log.warning("skipping %s: %s", path, frame)
        return
    yield frame, taken


def _video_frames(
    engine: Engine[Any],
    item: str,
    source: str,
    every_seconds: float,
    max_frames: int,
    start: float | None,
    failed: list[tuple[str, str]],
) -> Iterator[tuple[Any, float]]:
    """One frame per ``every_seconds`` of the video's (or the live stream's) time, with when it was taken."""
    live = is_stream(item)
    if not live and not Path(item).is_file():
        failed.append((item, "no such file"))
        return
    ms = int(STREAM_TIMEOUT_SECONDS * 1000)
    timeouts = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
    capture = cv2.VideoCapture(item, cv2.CAP_FFMPEG, timeouts)
    label = "the stream" if live else item
    if not capture.isOpened():
        failed.append((label, "could not open"))
        return
    try:
        fps = capture.get(cv2.CAP_PROP_FPS)
        fps = fps if 1.0 <= fps <= 240.0 else 25.0
        began = time.time()
        if not live and start is None:
            duration = max(capture.get(cv2.CAP_PROP_FRAME_COUNT), 0.0) / fps
            began = os.stat(item).st_mtime - duration
        elif start is not None:
            began = start
        index = taken_count = 0
        next_at = 0.0
        while not max_frames or taken_count < max_frames:
            if not capture.grab():
                break
            position = (time.time() - began) if live else index / fps
            index += 1
            if position + 1e-9 < next_at:
                continue
            next_at = position + every_seconds
            ok, pixels = capture.retrieve()
            if not ok or pixels is None or pixels.ndim != 3:
                failed.append((f"{label} at {position:.1f} s", "could not decode the frame"))
                continue
            taken_count += 1
            yield engine.from_host(np.ascontiguousarray(pixels), source=source), began + position
    finally:
        capture.release()
