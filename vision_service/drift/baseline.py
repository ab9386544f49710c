"""A source's reference baseline: what its signals normally look like, stored as readable JSON.

One file per source, ``<dir>/<source>.json``::

    {
      "format": "vision-service-baseline/1",
      "source": "cam-a",
      "created": "2025-01-31T12:00:00Z",
      "origin": "folder /data/cam-a/day (240 images)",
      "frames": 240,
      "settings": {"model": "yolo11n.pt", "confidence": 0.25, ...},
      "summary": {"brightness": {"count": 240, "mean": 0.43, "p05": ..., "p50": ..., "p95": ...}, ...},
      "samples": {"brightness": [0.21, 0.22, ...], ...}
    }

``samples`` holds each signal's sorted values (at most :data:`MAX_SAMPLES`, thinned to evenly
spaced order statistics beyond that); it is what drift is computed against. ``summary`` is for
people and is recomputed from ``samples`` on every write.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from vision_service.core.config import SOURCE_ID_PATTERN
from vision_service.drift.frame_values import SIGNALS, FrameSignals, pool
from vision_service.drift.scores import PSI_BINS, bin_fractions, quantile_edges

log = logging.getLogger(__name__)

FORMAT = "vision-service-baseline/1"
MAX_SAMPLES = 5000
SIGNIFICANT_DIGITS = 6


class BaselineError(ValueError):
    """A baseline file is unreadable or not a baseline; the message names the file and the cause."""


def thin(sorted_values: np.ndarray, limit: int = MAX_SAMPLES) -> np.ndarray:
    """At most ``limit`` evenly spaced order statistics x_(round(k (n-1) / (limit-1))), k = 0 .. limit-1.

    Keeps the minimum, the maximum and the shape of the empirical CDF, so quantile bins and the
    KS statistic change by at most ~1/limit.
    """
    if sorted_values.size <= limit:
        return sorted_values
    index = np.rint(np.linspace(0, sorted_values.size - 1, limit)).astype(np.int64)
    thinned: np.ndarray = sorted_values[index]
    return thinned


def _round(value: float) -> float:
    return float(f"{value:.{SIGNIFICANT_DIGITS}g}")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Baseline:
    """Reference samples of each signal of one source (sorted, finite); a signal may be missing."""

    source: str
    frames: int
    samples: Mapping[str, np.ndarray]
    origin: str = ""
    created: str = field(default_factory=_now)
    settings: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_frames(
        cls,
        source: str,
        frames: Sequence[FrameSignals],
        *,
        origin: str,
        settings: Mapping[str, Any] | None = None,
    ) -> Baseline:
        """The baseline of ``frames`` (see :func:`vision_service.drift.frame_values.frame_signals`)."""
        if not SOURCE_ID_PATTERN.match(source):
            raise ValueError(f"source id {source!r} must match {SOURCE_ID_PATTERN.pattern}")
        if not frames:
            raise ValueError(f"no frames to build the baseline of source {source!r} from")
        samples = {
            name: thin(np.sort(np.array([_round(v) for v in values])))
            for name, values in pool(frames).items()
            if name in SIGNALS
        }
        return cls(source=source, frames=len(frames), samples=samples, origin=origin, settings=dict(settings or {}))

    def mean(self, signal: str) -> float:
        """Mean of the signal's reference values (per frame; per detection for ``confidence``)."""
        return float(np.mean(self.samples[signal]))

    @cached_property
    def _bins(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        bins: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name, values in self.samples.items():
            edges = quantile_edges(values, PSI_BINS)
            bins[name] = (edges, bin_fractions(values, edges))
        return bins

    def bins(self, signal: str) -> tuple[np.ndarray, np.ndarray]:
        """PSI bin edges at the signal's reference quantiles and the reference fraction per bin (cached)."""
        return self._bins[signal]

    def summary(self) -> dict[str, dict[str, float]]:
        """Count, mean and 5th / 50th / 95th percentile of each signal, for people reading the file."""
        out: dict[str, dict[str, float]] = {}
        for name in SIGNALS:
            if name not in self.samples:
                continue
            values = self.samples[name]
            p05, p50, p95 = np.quantile(values, (0.05, 0.5, 0.95))
            out[name] = {
                "count": int(values.size),
                "mean": _round(float(np.mean(values))),
                "p05": _round(float(p05)),
                "p50": _round(float(p50)),
                "p95": _round(float(p95)),
            }
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "source": self.source,
            "created": self.created,
            "origin": self.origin,
            "frames": self.frames,
            "settings": dict(self.settings),
            "summary": self.summary(),
            "samples": {
                name: [_round(float(v)) for v in self.samples[name]] for name in SIGNALS if name in self.samples
            },
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Baseline:
        """Read :meth:`to_json` output back; raise :class:`BaselineError` when it is not a baseline."""
        if data.get("format") != FORMAT:
            raise BaselineError(f"format is {data.get('format')!r}, expected {FORMAT!r}")
        source = data.get("source")
        if not isinstance(source, str) or not SOURCE_ID_PATTERN.match(source):
            raise BaselineError(f"source {source!r} is not a valid source id")
        raw = data.get("samples")
        if not isinstance(raw, dict):
            raise BaselineError("'samples' must map signal names to lists of numbers")
        samples: dict[str, np.ndarray] = {}
        for name, values in raw.items():
            if name not in SIGNALS:
                raise BaselineError(f"unknown signal {name!r}; known: {', '.join(SIGNALS)}")
            try:
                array = np.sort(np.asarray(values, dtype=np.float64))
            except (TypeError, ValueError) as exc:
                raise BaselineError(f"samples of {name!r} are not numbers: {exc}") from None
            if array.ndim != 1 or array.size == 0 or not np.all(np.isfinite(array)):
                raise BaselineError(f"samples of {name!r} must be a non-empty list of finite numbers")
            samples[name] = array
        frames = data.get("frames", 0)
        if not isinstance(frames, int) or frames < 0:
            raise BaselineError(f"frames must be a non-negative integer, got {frames!r}")
        return cls(
            source=source,
            frames=frames,
            samples=samples,
            origin=str(data.get("origin", "")),
            created=str(data.get("created", "")),
            settings=dict(data.get("settings") or {}),
        )


def baseline_path(directory: Path, source: str) -> Path:
    """Where the baseline of ``source`` lives in ``directory``."""
    return directory / f"{source}.json"


def _format(document: dict[str, Any]) -> str:
    """Indented JSON, except that each signal's summary and samples stay on one line."""
    document = dict(document)
    blocks = {key: document.pop(key) for key in ("summary", "samples")}
    text = json.dumps(document, indent=2).removesuffix("\n}")
    for key, block in blocks.items():
        lines = [f"    {json.dumps(name)}: {json.dumps(value)}" for name, value in block.items()]
        text += f',\n  "{key}": {{\n' + ",\n".join(lines) + "\n  }"
    return text + "\n}\n"


def save_baseline(baseline: Baseline, path: Path) -> None:
    """Write ``baseline`` as indented JSON, atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = _format(baseline.to_json())
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_baseline(path: Path) -> Baseline:
    """Read one baseline file; raise :class:`BaselineError` naming the file when it is unusable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BaselineError(f"{path}: {exc}") from None
    if not isinstance(data, dict):
        raise BaselineError(f"{path}: not a JSON object")
    try:
        return Baseline.from_json(data)
    except BaselineError as exc:
        raise BaselineError(f"{path}: {exc}") from None


def load_baselines(directory: Path) -> dict[str, Baseline]:
    """Every ``*.json`` baseline in ``directory`` by source; unusable files are logged and skipped."""
    baselines: dict[str, Baseline] = {}
    if not directory.is_dir():
        return baselines
    for path in sorted(directory.glob("*.json")):
        try:
            baseline = load_baseline(path)
        except BaselineError as exc:
            log.error("ignoring baseline file %s", exc)
            continue
        if path.stem != baseline.source:
            log.warning("%s holds the baseline of source %r; expected %s", path, baseline.source, path.stem)
        baselines[baseline.source] = baseline
        log.info("loaded baseline of source %s (%d frames, %s)", baseline.source, baseline.frames, baseline.origin)
    return baselines
