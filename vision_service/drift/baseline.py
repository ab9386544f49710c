"""A source's reference baseline: what its signals normally look like, per regime, as readable JSON.

One file per source, ``<dir>/<source>.json``::

    {
      "format": "vision-service-baseline/2",
      "source": "cam-a",
      "created": "2025-01-31T12:00:00Z",
      "origin": "/data/cam-a/week (1200 files)",
      "frames": 1200,
      "settings": {"model": "yolo11n.pt", "confidence": 0.25, ...},
      "rule": {"monochrome_colourfulness": 4.0, "night_brightness": 0.15, "day_brightness": 0.3, "day_noise": 4.0,
               "hours": []},
      "regimes": {
        "day": {
          "frames": 800,
          "summary": {"brightness": {"count": 800, "mean": 0.43, "p05": ..., "p50": ..., "p95": ...}, ...},
          "samples": {"brightness": [0.21, 0.22, ...], ...}
        },
        "night": {...}
      }
    }

``rule`` (:class:`vision_service.regimes.RegimeRule`) sorts live frames into the regimes; ``null``
means one regime, ``all``. Each regime's ``samples`` hold each signal's sorted values (at most
:data:`MAX_SAMPLES`, thinned to evenly spaced order statistics beyond that); they are what drift is
computed against. ``summary`` is for people and is recomputed from ``samples`` on every write.

Files of format ``vision-service-baseline/1`` (before regimes: ``summary`` and ``samples`` at the
top level) are still read, as a baseline with the single regime ``all``.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from vision_service.core.config import SOURCE_ID_PATTERN
from vision_service.drift.frame_values import SIGNALS, FrameSignals, pool
from vision_service.drift.scores import PSI_BINS, bin_fractions, quantile_edges
from vision_service.regimes import ALL, RegimeRule

log = logging.getLogger(__name__)

FORMAT = "vision-service-baseline/2"
FORMAT_1 = "vision-service-baseline/1"
MAX_SAMPLES = 5000
SIGNIFICANT_DIGITS = 6
# A regime name is a label value: short and plain, like a source id.
_REGIME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")


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
class Reference:
    """Reference samples of each signal in one regime (sorted, finite); a signal may be missing."""

    frames: int
    samples: Mapping[str, np.ndarray]

    @classmethod
    def from_frames(cls, frames: Sequence[FrameSignals]) -> Reference:
        """The reference of ``frames`` (see :func:`vision_service.drift.frame_values.frame_signals`)."""
        if not frames:
            raise ValueError("no frames")
        samples = {
            name: thin(np.sort(np.array([_round(v) for v in values])))
            for name, values in pool(frames).items()
            if name in SIGNALS
        }
        return cls(frames=len(frames), samples=samples)

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
            "frames": self.frames,
            "summary": self.summary(),
            "samples": {
                name: [_round(float(v)) for v in self.samples[name]] for name in SIGNALS if name in self.samples
            },
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Reference:
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
        return cls(frames=frames, samples=samples)


@dataclass(frozen=True)
class Baseline:
    """A source's references, one per regime, and the rule that sorts its frames into them.

    ``rule`` None: a single regime, :data:`~vision_service.regimes.ALL`, whatever the frame.
    """

    source: str
    regimes: Mapping[str, Reference]
    rule: RegimeRule | None = None
    origin: str = ""
    created: str = field(default_factory=_now)
    settings: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.rule is None and set(self.regimes) - {ALL}:
            raise ValueError(f"a baseline without a regime rule has the one regime {ALL!r}, not {sorted(self.regimes)}")
        if self.rule is not None and ALL in self.regimes:
            raise ValueError(f"a baseline with a regime rule has no regime {ALL!r}")

    @classmethod
    def from_frames(
        cls,
        source: str,
        frames: Sequence[FrameSignals],
        *,
        origin: str,
        settings: Mapping[str, Any] | None = None,
        rule: RegimeRule | None = None,
        regimes: Sequence[str] | None = None,
    ) -> Baseline:
        """The baseline of ``frames``: one regime (``rule`` None), or the regime of each frame given
        in ``regimes`` (same length as ``frames``, names from ``rule``)."""
        if not SOURCE_ID_PATTERN.match(source):
            raise ValueError(f"source id {source!r} must match {SOURCE_ID_PATTERN.pattern}")
        if not frames:
            raise ValueError(f"no frames to build the baseline of source {source!r} from")
        if rule is None:
            by_regime = {ALL: list(frames)}
        else:
            if regimes is None or len(regimes) != len(frames):
                raise ValueError("with a regime rule, give the regime of every frame")
            by_regime = {}
            for frame, regime in zip(frames, regimes, strict=True):
                by_regime.setdefault(regime, []).append(frame)
        references = {regime: Reference.from_frames(group) for regime, group in sorted(by_regime.items())}
        return cls(source=source, regimes=references, rule=rule, origin=origin, settings=dict(settings or {}))

    @property
    def frames(self) -> int:
        """Frames over all regimes."""
        return sum(reference.frames for reference in self.regimes.values())

    def with_regime(self, regime: str, reference: Reference) -> Baseline:
        """A copy with ``regime``'s reference set (learning a regime the baseline did not have)."""
        return replace(self, regimes={**self.regimes, regime: reference})

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "source": self.source,
            "created": self.created,
            "origin": self.origin,
            "frames": self.frames,
            "settings": dict(self.settings),
            "rule": None if self.rule is None else self.rule.to_json(),
            "regimes": {regime: reference.to_json() for regime, reference in sorted(self.regimes.items())},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Baseline:
        """Read :meth:`to_json` output (or a format-1 file) back; raise :class:`BaselineError` if it is none."""
        version = data.get("format")
        if version not in (FORMAT, FORMAT_1):
            raise BaselineError(f"format is {version!r}, expected {FORMAT!r} (or {FORMAT_1!r})")
        source = data.get("source")
        if not isinstance(source, str) or not SOURCE_ID_PATTERN.match(source):
            raise BaselineError(f"source {source!r} is not a valid source id")
        rule: RegimeRule | None = None
        if version == FORMAT_1:
            regimes = {ALL: Reference.from_json(data)}
        else:
            raw_rule = data.get("rule")
            if raw_rule is not None:
                if not isinstance(raw_rule, dict):
                    raise BaselineError("'rule' must be an object or null")
                try:
                    rule = RegimeRule.from_json(raw_rule)
                except ValueError as exc:
                    raise BaselineError(str(exc)) from None
            raw = data.get("regimes")
            if not isinstance(raw, dict) or not raw:
                raise BaselineError("'regimes' must map regime names to their samples")
            regimes = {}
            for name, block in raw.items():
                if not isinstance(name, str) or not name or not set(name) <= _REGIME_CHARS or len(name) > 32:
                    raise BaselineError(f"regime name {name!r} must be short lower-case letters, digits, '-' or '_'")
                if not isinstance(block, dict):
                    raise BaselineError(f"regime {name!r} must be an object")
                try:
                    regimes[name] = Reference.from_json(block)
                except BaselineError as exc:
                    raise BaselineError(f"regime {name!r}: {exc}") from None
            allowed = {ALL} if rule is None else set(rule.names())
            if set(regimes) - allowed:
                raise BaselineError(
                    f"regimes {sorted(set(regimes) - allowed)} are not among those of the rule: {sorted(allowed)}"
                )
        try:
            return cls(
                source=source,
                regimes=regimes,
                rule=rule,
                origin=str(data.get("origin", "")),
                created=str(data.get("created", "")),
                settings=dict(data.get("settings") or {}),
            )
        except ValueError as exc:
            raise BaselineError(str(exc)) from None


def baseline_path(directory: Path, source: str) -> Path:
    """Where the baseline of ``source`` lives in ``directory``."""
    return directory / f"{source}.json"


def _format(document: dict[str, Any]) -> str:
    """Indented JSON, except that each signal's summary and samples stay on one line."""
    document = dict(document)
    regimes = document.pop("regimes")
    text = json.dumps(document, indent=2).removesuffix("\n}")
    parts = []
    for regime, block in regimes.items():
        part = f'    {json.dumps(regime)}: {{\n      "frames": {block["frames"]}'
        for key in ("summary", "samples"):
            lines = [f"        {json.dumps(name)}: {json.dumps(value)}" for name, value in block[key].items()]
            part += f',\n      "{key}": {{\n' + ",\n".join(lines) + "\n      }"
        parts.append(part + "\n    }")
    return text + ',\n  "regimes": {\n' + ",\n".join(parts) + "\n  }\n}\n"


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
        log.info(
            "loaded baseline of source %s (%d frames, regimes %s, %s)",
            baseline.source,
            baseline.frames,
            ", ".join(sorted(baseline.regimes)),
            baseline.origin,
        )
    return baselines
