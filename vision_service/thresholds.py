"""The alert thresholds, read from the Prometheus rules file that records them: one place to tune.

Prometheus records every threshold as a constant series in ``compose/prometheus/rules/thresholds.yml``
(``- record: vision:threshold:low_brightness_ratio`` / ``expr: vector(0.15)``), and the alert
rules compare against those series. The service reads the *same file* for the conditions its API
and live page show (:mod:`vision_service.conditions`), so a number tuned there changes the alerts
and the page alike.

Which file: ``VISION_THRESHOLDS_FILE`` when set (e.g. the file the operator's Prometheus loads,
mounted into the service), else the copy shipped inside the package (``vision_service/thresholds.yml``),
which ``tests/test_thresholds.py`` keeps byte-identical to ``compose/prometheus/rules/thresholds.yml``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

RECORD_PREFIX = "vision:threshold:"
_VECTOR = re.compile(r"vector\(\s*([0-9.eE+-]+)\s*\)")
PACKAGED_NAME = "thresholds.yml"


class ThresholdsError(ValueError):
    """The thresholds file is unreadable or lacks a threshold; the message names the file and the cause."""


@dataclass(frozen=True)
class Thresholds:
    """The thresholds the service's conditions use, by their ``vision:threshold:<name>`` name.

    Units and meaning are those of docs/alerts.md ("Thresholds: one place").
    """

    low_brightness_ratio: float
    high_noise_sigma: float
    blurry_sharpness: float
    drift_psi: float
    drift_ks: float
    drift_min_window_size: float
    confidence_min_fraction_of_baseline: float
    no_detections_min_frames: float
    no_detections_min_reference: float
    origin: str = ""  # the file they were read from

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "origin"}


def packaged_path() -> Path:
    """The thresholds file shipped inside the package (a copy of compose/prometheus/rules/thresholds.yml)."""
    return Path(str(resources.files("vision_service").joinpath(PACKAGED_NAME)))


def parse_rules(document: Any, origin: str) -> dict[str, float]:
    """Every ``vision:threshold:<name>`` constant of a Prometheus rules document, by ``<name>``."""
    if not isinstance(document, dict) or not isinstance(document.get("groups"), list):
        raise ThresholdsError(f"{origin}: not a Prometheus rules file (no 'groups' list)")
    values: dict[str, float] = {}
    for group in document["groups"]:
        for rule in (group or {}).get("rules") or []:
            record = str(rule.get("record", ""))
            if not record.startswith(RECORD_PREFIX):
                continue
            match = _VECTOR.fullmatch(str(rule.get("expr", "")).strip())
            if match is None:
                raise ThresholdsError(f"{origin}: {record} must be `vector(<number>)`, got {rule.get('expr')!r}")
            value = float(match.group(1))
            if not math.isfinite(value):
                raise ThresholdsError(f"{origin}: {record} is not a finite number")
            values[record.removeprefix(RECORD_PREFIX)] = value
    return values


def load_thresholds(path: Path | None = None) -> Thresholds:
    """The thresholds of ``path`` (default: the packaged copy); raise :class:`ThresholdsError` naming what is wrong."""
    path = path or packaged_path()
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ThresholdsError(f"cannot read thresholds file {path}: {exc}") from None
    values = parse_rules(document, str(path))
    wanted = [f.name for f in fields(Thresholds) if f.name != "origin"]
    missing = [name for name in wanted if name not in values]
    if missing:
        raise ThresholdsError(f"{path}: missing {', '.join(RECORD_PREFIX + name for name in missing)}")
    return Thresholds(**{name: values[name] for name in wanted}, origin=str(path))
