"""Building a baseline from reference image files, exactly as the service would measure them.

Each file is decoded with :func:`vision_service.decode.decode_image`, measured with
:func:`quality.measure` and run through the detector configured by the settings
(``VISION_MODEL``, ``VISION_DEVICE``, thresholds and sizes), via the same
:class:`vision_service.pipeline.Pipeline` the service uses.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from vision_service.core.config import Settings
from vision_service.decode import decode_image
from vision_service.detector import Detector
from vision_service.drift.baseline import Baseline
from vision_service.drift.signals import FrameSignals, measurement_signals
from vision_service.drift.tracker import detector_settings
from vision_service.errors import InputError
from vision_service.pipeline import PendingFrame, Pipeline

log = logging.getLogger(__name__)

# Reference files are trusted local files: far larger than an upload may be.
MAX_FILE_BYTES = 1 << 31
MAX_FILE_PIXELS = 1 << 31


@dataclass(frozen=True)
class BuildResult:
    baseline: Baseline
    failed: list[tuple[Path, str]]  # files that could not be read, and why


def build_baseline(
    files: Sequence[Path], source: str, settings: Settings, *, origin: str, progress: bool | None = None
) -> BuildResult:
    """Measure and detect every file and return the baseline of those that could be decoded.

    ``progress``: show a tqdm bar on stderr (None: only when stderr is a terminal).
    Raises :class:`ValueError` when no file could be used, and
    :class:`vision_service.detector.ModelLoadError` when the model cannot be loaded.
    """
    detector = Detector.from_settings(settings)
    detector.load()
    pipeline = Pipeline(detector, analysis_size=settings.analysis_size, max_pending=1)
    frames: list[FrameSignals] = []
    failed: list[tuple[Path, str]] = []
    disable = None if progress is None else not progress
    for path in tqdm(files, desc=f"baseline {source}", unit="img", disable=disable, file=sys.stderr):
        try:
            frame = decode_image(path.read_bytes(), max_bytes=MAX_FILE_BYTES, max_pixels=MAX_FILE_PIXELS)
        except (OSError, InputError) as exc:
            failed.append((path, str(exc)))
            log.warning("skipping %s: %s", path, exc)
            continue
        (measurement,) = pipeline.process([PendingFrame(frame.pixels, source)])
        frames.append(measurement_signals(measurement))
    if not frames:
        raise ValueError(f"none of the {len(files)} files could be decoded")
    baseline = Baseline.from_frames(source, frames, origin=origin, settings=detector_settings(settings))
    return BuildResult(baseline=baseline, failed=failed)
