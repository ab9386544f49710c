"""Building a baseline from reference image files, exactly as the service would measure them.

The files run through the engine the settings describe
(:func:`vision_service.engine.factory.load_engine`: ``VISION_MODEL``, ``VISION_DEVICE``,
``VISION_DEVICE_PATH``, thresholds and sizes), the engine the service measures live frames with,
so drift compares like with like.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from vision_service.core.config import Settings
from vision_service.drift.baseline import Baseline
from vision_service.drift.frame_values import FrameSignals, frame_signals
from vision_service.drift.tracker import detector_settings
from vision_service.engine.factory import load_engine
from vision_service.errors import ImageRejected

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
    :class:`vision_service.engine.factory.ModelLoadError` when the model cannot be loaded.
    """
    trusted = {"max_upload_bytes": MAX_FILE_BYTES, "max_image_pixels": MAX_FILE_PIXELS}
    engine = load_engine(settings.model_copy(update=trusted))
    frames: list[FrameSignals] = []
    failed: list[tuple[Path, str]] = []
    disable = None if progress is None else not progress
    for path in tqdm(files, desc=f"baseline {source}", unit="img", disable=disable, file=sys.stderr):
        try:
            (frame,) = engine.decode([path.read_bytes()], source=source)
        except OSError as exc:
            failed.append((path, str(exc)))
            continue
        if isinstance(frame, ImageRejected):
            failed.append((path, str(frame)))
            log.warning("skipping %s: %s", path, frame)
            continue
        (result,) = engine.run([frame]).results
        frames.append(frame_signals(result.quality, result.detections))
    if not frames:
        raise ValueError(f"none of the {len(files)} files could be decoded")
    baseline = Baseline.from_frames(source, frames, origin=origin, settings=detector_settings(settings))
    return BuildResult(baseline=baseline, failed=failed)
