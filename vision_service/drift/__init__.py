"""Drift of each source's input against its reference baseline (PSI and KS), see docs/drift.md.

| module | one concept |
|---|---|
| ``frame_values`` | the signals drift is measured on, and their values for one frame |
| ``scores`` | PSI and KS, pure functions |
| ``baseline`` | a source's reference samples per regime and its JSON file |
| ``window`` | the last N frames of a source in one regime |
| ``tracker`` | windows per source and regime + baselines, learning, scores on demand (the pipeline sink) |
| ``reference`` | a baseline measured from reference image files (``vision-service baseline build``) |
| ``collector`` | the Prometheus collector read at scrape time |
"""

from vision_service.drift.baseline import (
    Baseline,
    BaselineError,
    Reference,
    baseline_path,
    load_baseline,
    save_baseline,
)
from vision_service.drift.collector import DriftCollector
from vision_service.drift.frame_values import SIGNALS, frame_signals
from vision_service.drift.scores import ks_statistic, psi
from vision_service.drift.tracker import DriftTracker

__all__ = [
    "SIGNALS",
    "Baseline",
    "BaselineError",
    "DriftCollector",
    "DriftTracker",
    "Reference",
    "baseline_path",
    "frame_signals",
    "ks_statistic",
    "load_baseline",
    "psi",
    "save_baseline",
]
