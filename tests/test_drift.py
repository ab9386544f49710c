"""Drift against a reference baseline, on real photographs.

Day frames are random crops of eight real photographs with a little daylight sensor noise;
night frames are the same scenes shot with 2 % of the light (quality.simulate.low_light:
shot noise, read noise, auto-gain). The baseline is built from day frames; a window of night
frames must drift past the act level, a window of fresh day frames (other crops, other noise
seeds) must stay under the watch level.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from scipy.stats import ks_2samp
from ultralytics.utils import ASSETS

import quality
from quality.simulate import gaussian_noise, infrared, low_light
from tests.conftest import encode_jpeg
from tests.streams import photographs, write_video
from vision_service.cli import main as cli_main
from vision_service.core.config import Settings
from vision_service.drift import (
    SIGNALS,
    Baseline,
    BaselineError,
    DriftCollector,
    DriftTracker,
    baseline_path,
    frame_signals,
    ks_statistic,
    load_baseline,
    psi,
    save_baseline,
)
from vision_service.drift.baseline import MAX_SAMPLES, load_baselines, thin
from vision_service.drift.frame_values import QUALITY_SIGNALS
from vision_service.drift.scores import quantile_edges
from vision_service.drift.tracker import MIN_VALUES, TESTS
from vision_service.measurement import Measurement, StageTimes
from vision_service.regimes import ALL, DAY, DEFAULT_RULE, NIGHT, TWILIGHT, RegimeRule

RULES_DIR = Path(__file__).resolve().parents[1] / "compose" / "prometheus" / "rules"
PSI_WATCH, PSI_ACT, KS_ALERT = 0.1, 0.25, 0.2  # the defaults in compose/prometheus/rules/thresholds.yml
NIGHT_LIGHT = 0.02  # fraction of the daylight exposure
FRAME_SIZE = 256  # longer side of each crop: small keeps the test fast, quality is scale-normalised


# ------------------------------------------------------------------ frames


def _bgr(rgb: np.ndarray) -> np.ndarray:
    if rgb.ndim == 2:
        rgb = np.stack([rgb] * 3, axis=-1)
    return cv2.cvtColor(np.ascontiguousarray(rgb[..., :3]), cv2.COLOR_RGB2BGR)


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    """Eight real daylight photographs: street, people, portrait, food, cat, rocket, motorbike, camera man."""
    return [
        cv2.imread(str(ASSETS / "bus.jpg")),
        cv2.imread(str(ASSETS / "zidane.jpg")),
        _bgr(skimage.data.astronaut()),
        _bgr(skimage.data.coffee()),
        _bgr(skimage.data.chelsea()),
        _bgr(skimage.data.rocket()),
        _bgr(skimage.data.stereo_motorcycle()[0]),
        _bgr(skimage.data.camera()),
    ]


def _crop(photo: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random crop of 60-95 % of each side, scaled so its longer side is FRAME_SIZE."""
    h, w = photo.shape[:2]
    f = rng.uniform(0.6, 0.95)
    ch, cw = int(h * f), int(w * f)
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    crop = photo[y : y + ch, x : x + cw]
    scale = FRAME_SIZE / max(ch, cw)
    return cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def day_frame(photo: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return gaussian_noise(_crop(photo, rng), sigma=rng.uniform(0.5, 2.0), rng=rng)


def night_frame(photo: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return low_light(_crop(photo, rng), light=NIGHT_LIGHT, rng=rng)


def signals_of(
    photos: list[np.ndarray], make: Callable[[np.ndarray, np.random.Generator], np.ndarray], per_photo: int, seed: int
) -> list[dict[str, tuple[float, ...]]]:
    rng = np.random.default_rng(seed)
    return [frame_signals(quality.measure(make(p, rng))) for p in photos for _ in range(per_photo)]


@pytest.fixture(scope="module")
def day_baseline(photos: list[np.ndarray]) -> Baseline:
    """512 day frames (64 per photograph)."""
    return Baseline.from_frames("street", signals_of(photos, day_frame, 64, seed=1), origin="test day photographs")


@pytest.fixture(scope="module")
def fresh_day(photos: list[np.ndarray]) -> list[dict[str, tuple[float, ...]]]:
    """320 other day frames: other crops, other noise."""
    return signals_of(photos, day_frame, 40, seed=2)


@pytest.fixture(scope="module")
def night(photos: list[np.ndarray]) -> list[dict[str, tuple[float, ...]]]:
    """128 night frames of the same scenes (16 per photograph)."""
    return signals_of(photos, night_frame, 16, seed=3)


def exported(tracker: DriftTracker) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """What Prometheus would scrape from the drift collector: (name, labels) -> value."""
    registry = CollectorRegistry()
    registry.register(DriftCollector(tracker))
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for s in family.samples
    }


def score(
    values: dict[tuple[str, tuple[tuple[str, str], ...]], float],
    source: str,
    signal: str,
    test: str,
    regime: str = ALL,
) -> float:
    return values[("vision_drift_score", (("regime", regime), ("signal", signal), ("source", source), ("test", test)))]


def window_size(values: dict[tuple[str, tuple[tuple[str, str], ...]], float], source: str, regime: str = ALL) -> float:
    return values[("vision_drift_window_size", (("regime", regime), ("source", source)))]


def tracker_with(baseline: Baseline, frames: list[dict[str, tuple[float, ...]]], window: int) -> DriftTracker:
    tracker = DriftTracker(window_frames=window, baselines={baseline.source: baseline})
    for frame in frames:
        tracker.observe(baseline.source, frame)
    return tracker


# ------------------------------------------------------------------ the math


def test_psi_follows_its_formula_on_reference_quantile_bins() -> None:
    reference = np.arange(100.0)  # quartile edges 24.75, 49.5, 74.25: 25 % per bin
    current = np.concatenate(
        [np.arange(0.0, 25.0), np.arange(0.0, 25.0), np.arange(75.0, 100.0), np.arange(75.0, 100.0)]
    )
    # a = [0.5, 0, 0, 0.5], e = 0.25 each, empty bins raised to epsilon = 1e-4
    expected = 2 * (0.5 - 0.25) * math.log(0.5 / 0.25) + 2 * (1e-4 - 0.25) * math.log(1e-4 / 0.25)
    assert psi(reference, current, bins=4) == pytest.approx(expected)
    assert math.isfinite(psi(reference, np.full(10, 1000.0), bins=4))


def test_psi_is_zero_for_the_same_distribution_and_symmetric() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 2000), rng.normal(0.5, 1, 2000)
    assert psi(a, a) == 0.0
    assert psi(a, b) > 0
    assert psi(a, np.sort(a)[::-1]) == 0.0  # order does not matter


def test_ties_merge_bins_instead_of_leaving_empty_ones() -> None:
    # Underexposed ratio: exactly 0 in most daylight frames.
    reference = np.concatenate([np.zeros(90), np.linspace(0.01, 0.1, 10)])
    edges = quantile_edges(reference, 10)
    assert len(edges) == len(np.unique(edges)) < 9
    assert psi(reference, reference) == 0.0
    same_share_of_zeros = np.concatenate([np.zeros(45), np.linspace(0.015, 0.095, 5)])
    assert psi(reference, same_share_of_zeros) < PSI_WATCH
    assert psi(reference, np.zeros(50)) > PSI_ACT  # the non-zero tail vanished: that is a shift


def test_ks_statistic_is_the_largest_gap_between_the_two_cdfs() -> None:
    assert ks_statistic(np.array([1.0, 2.0, 3.0, 4.0]), np.array([3.0, 4.0, 5.0, 6.0])) == 0.5
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, 500), rng.normal(0.3, 1, 300)
    assert ks_statistic(a, b) == pytest.approx(ks_2samp(a, b).statistic)


# ------------------------------------------------------------------ day baseline, night window


def test_night_window_drifts_past_the_act_level(
    day_baseline: Baseline, night: list[dict[str, tuple[float, ...]]]
) -> None:
    values = exported(tracker_with(day_baseline, night, window=500))
    assert window_size(values, "street") == len(night) == 128
    assert score(values, "street", "brightness", "psi") > PSI_ACT
    assert score(values, "street", "brightness", "ks") > 0.8  # night and day brightness barely overlap
    # Low light also means gain noise: the noise estimate drifts as well.
    assert score(values, "street", "noise_sigma", "psi") > PSI_ACT
    assert score(values, "street", "noise_sigma", "ks") > KS_ALERT


def test_fresh_day_window_stays_under_the_watch_level(
    day_baseline: Baseline, fresh_day: list[dict[str, tuple[float, ...]]]
) -> None:
    values = exported(tracker_with(day_baseline, fresh_day, window=500))
    for signal in QUALITY_SIGNALS:
        assert score(values, "street", signal, "psi") < PSI_WATCH, signal
        assert score(values, "street", signal, "ks") < KS_ALERT, signal


def test_the_window_rolls_night_out_again_at_dawn(
    day_baseline: Baseline, night: list[dict[str, tuple[float, ...]]], fresh_day: list[dict[str, tuple[float, ...]]]
) -> None:
    tracker = tracker_with(day_baseline, night, window=len(night))
    assert score(exported(tracker), "street", "brightness", "psi") > PSI_ACT
    for frame in fresh_day[: len(night) // 2]:  # half the window is day again
        tracker.observe("street", frame)
    assert score(exported(tracker), "street", "brightness", "ks") == pytest.approx(0.5, abs=0.1)
    for frame in fresh_day[len(night) // 2 :]:
        tracker.observe("street", frame)
    values = exported(tracker)
    assert window_size(values, "street") == len(night)
    assert score(values, "street", "brightness", "psi") < PSI_ACT
    assert score(values, "street", "brightness", "ks") < KS_ALERT


def test_scores_need_a_baseline_and_enough_values(
    day_baseline: Baseline, fresh_day: list[dict[str, tuple[float, ...]]]
) -> None:
    tracker = DriftTracker(window_frames=500, baselines={"street": day_baseline})
    for frame in fresh_day[: MIN_VALUES - 1]:
        tracker.observe("street", frame)
        tracker.observe("garage", frame)  # no baseline
    values = exported(tracker)
    assert window_size(values, "garage") == MIN_VALUES - 1
    assert not [key for key in values if key[0] == "vision_drift_score"]
    tracker.observe("street", fresh_day[MIN_VALUES])
    names = {
        (dict(labels)["source"], dict(labels)["signal"])
        for name, labels in exported(tracker)
        if name == "vision_drift_score"
    }
    assert names == {("street", signal) for signal in QUALITY_SIGNALS}  # no detector ran: no detection signals


def test_baseline_means_are_exported_per_source_and_signal(day_baseline: Baseline) -> None:
    values = exported(DriftTracker(baselines={"street": day_baseline}))
    for signal in QUALITY_SIGNALS:
        mean = values[("vision_baseline_mean", (("signal", signal), ("source", "street")))]
        assert mean == pytest.approx(float(np.mean(day_baseline.regimes[ALL].samples[signal])))


def test_exported_names_and_labels_match_the_alert_rules() -> None:
    rules = "\n".join(p.read_text() for p in RULES_DIR.glob("*.yml"))
    for name in ("vision_drift_score", "vision_drift_window_size", "vision_baseline_mean"):
        assert name in rules
    assert set(re.findall(r'vision_drift_score\{test="(\w+)"', rules)) == set(TESTS)
    assert set(re.findall(r'vision_baseline_mean\{signal="(\w+)"\}', rules)) == {"detections", "confidence"}
    assert {"detections", "confidence"} <= set(SIGNALS)


# ------------------------------------------------------------------ regimes: day, usual nights, an unusual night


def night_ir_frame(photo: np.ndarray, rng: np.random.Generator, light: float = 0.02) -> np.ndarray:
    """The camera's infrared night mode (monochrome), lit by its illuminator at ``light`` of daylight."""
    return infrared(_crop(photo, rng), light, rng=rng)


def measured(
    photos: list[np.ndarray], make: Callable[[np.ndarray, np.random.Generator], np.ndarray], per_photo: int, seed: int
) -> list[tuple[dict[str, tuple[float, ...]], str]]:
    """Frame signals and the default rule's regime of each frame."""
    rng = np.random.default_rng(seed)
    out = []
    for photo in photos:
        for _ in range(per_photo):
            report = quality.measure(make(photo, rng))
            out.append((frame_signals(report), DEFAULT_RULE.regime(report)))
    return out


@pytest.fixture(scope="module")
def colour_photos(photos: list[np.ndarray]) -> list[np.ndarray]:
    """The photographs that look like daylight to the regime rule at the test's frame size: colour,
    a mean level of at least 0.35, and clean (bus.jpg's dense detail reads as grain at 256 px).
    A camera that is always monochrome has only a night regime, one always dim only twilight."""

    def looks_like_day(photo: np.ndarray) -> bool:
        small = cv2.resize(photo, None, fx=FRAME_SIZE / max(photo.shape[:2]), fy=FRAME_SIZE / max(photo.shape[:2]))
        report = quality.measure(small)
        return DEFAULT_RULE.light(report) == DAY and report.brightness >= 0.35

    return [p for p in photos if looks_like_day(p)]


@pytest.fixture(scope="module")
def regime_baseline(colour_photos: list[np.ndarray]) -> Baseline:
    """A camera's usual days and nights: 448 day frames, 448 infrared night frames."""
    per_photo = 448 // len(colour_photos)
    frames = measured(colour_photos, day_frame, per_photo, seed=21) + measured(
        colour_photos, night_ir_frame, per_photo, seed=22
    )
    return Baseline.from_frames(
        "street",
        [f for f, _ in frames],
        origin="test days and nights",
        rule=DEFAULT_RULE,
        regimes=[r for _, r in frames],
    )


def test_the_rule_puts_daylight_in_day_and_infrared_in_night(regime_baseline: Baseline) -> None:
    # Random crops of daylight photographs: most are day, a few dark crops are twilight; IR is night.
    assert set(regime_baseline.regimes) <= {DAY, TWILIGHT, NIGHT}
    assert regime_baseline.regimes[NIGHT].frames == regime_baseline.frames // 2
    assert regime_baseline.regimes[DAY].frames > 0.8 * regime_baseline.frames // 2


def test_a_usual_night_is_no_drift_against_its_regime_but_drifts_against_a_single_regime_day_baseline(
    colour_photos: list[np.ndarray], regime_baseline: Baseline, day_baseline: Baseline
) -> None:
    night = measured(colour_photos, night_ir_frame, 40, seed=23)  # other crops, other noise
    assert {r for _, r in night} == {NIGHT}
    per_regime = DriftTracker(window_frames=500, baselines={"street": regime_baseline})
    for frame, regime in night:
        per_regime.observe("street", frame, regime)
    values = exported(per_regime)
    assert window_size(values, "street", NIGHT) == len(night)
    for signal in QUALITY_SIGNALS:
        assert score(values, "street", signal, "psi", NIGHT) < PSI_ACT, signal
        assert score(values, "street", signal, "ks", NIGHT) < KS_ALERT, signal
    single = tracker_with(day_baseline, [f for f, _ in night], window=500)
    assert score(exported(single), "street", "brightness", "psi") > PSI_ACT
    assert score(exported(single), "street", "colourfulness", "ks") > 0.9  # grey against colour


def test_a_night_unlike_the_usual_nights_drifts_in_its_regime(
    colour_photos: list[np.ndarray], regime_baseline: Baseline
) -> None:
    """The IR illuminator fails to a fifth of its light: darker and noisier than the usual nights."""
    weak = measured(colour_photos, lambda p, rng: night_ir_frame(p, rng, light=0.004), 20, seed=24)
    tracker = DriftTracker(window_frames=500, baselines={"street": regime_baseline})
    for frame, regime in weak:
        tracker.observe("street", frame, regime)
    values = exported(tracker)
    assert score(values, "street", "brightness", "psi", NIGHT) > PSI_ACT
    assert score(values, "street", "noise_sigma", "ks", NIGHT) > KS_ALERT


def test_a_regime_goes_quiet_soon_after_its_last_frame_and_the_reference_follows_the_regime(
    colour_photos: list[np.ndarray], regime_baseline: Baseline
) -> None:
    window = 60  # a regime stays current while it holds one of the source's last 60 / 10 = 6 frames
    day = [f for f in measured(colour_photos, day_frame, 2 * window // len(colour_photos), seed=25) if f[1] == DAY]
    night = measured(colour_photos, night_ir_frame, window // len(colour_photos) + 1, seed=26)[:window]
    tracker = DriftTracker(window_frames=window, baselines={"street": regime_baseline})
    for frame, regime in day[:window] + night[:5]:
        tracker.observe("street", frame, regime)
    values = exported(tracker)
    assert window_size(values, "street", DAY) == window  # the last day frame is among the last 6
    assert values[("vision_drift_regime", (("regime", NIGHT), ("source", "street")))] == 1
    assert values[("vision_drift_regime", (("regime", DAY), ("source", "street")))] == 0
    night_mean = regime_baseline.regimes[NIGHT].mean("brightness")
    mean = values[("vision_baseline_mean", (("signal", "brightness"), ("source", "street")))]
    assert mean == pytest.approx(night_mean)
    tracker.observe("street", *night[5])
    values = exported(tracker)
    assert ("vision_drift_window_size", (("regime", DAY), ("source", "street"))) not in values
    assert not [k for k in values if k[0] == "vision_drift_score" and ("regime", DAY) in k[1]]
    for frame, regime in night[6:]:
        tracker.observe("street", frame, regime)
    assert window_size(exported(tracker), "street", NIGHT) == window


def test_hour_buckets_use_the_local_hour_of_each_frame(colour_photos: list[np.ndarray]) -> None:
    rule = RegimeRule(hours=(6, 18))
    frames = measured(colour_photos, day_frame, 3, seed=27)
    baseline = Baseline.from_frames(
        "street", [f for f, _ in frames], origin="test", rule=rule, regimes=["day-h06"] * len(frames)
    )
    evening = time.mktime((2025, 6, 1, 20, 30, 0, 0, 0, -1))  # 20:30 local time
    tracker = DriftTracker(baselines={"street": baseline}, clock=lambda: evening)
    report = quality.measure(day_frame(colour_photos[0], np.random.default_rng(0)))
    tracker.record(Measurement("street", 256, 192, report, [], StageTimes(), "cpu"))
    assert tracker.current_regimes() == {"street": "day-h18"}


def test_learning_fills_in_each_regime_from_its_first_frames_and_keeps_them_after_a_restart(
    tmp_path: Path, colour_photos: list[np.ndarray]
) -> None:
    learn = 12
    day = measured(colour_photos, day_frame, learn, seed=28)[:learn]
    night = measured(colour_photos, night_ir_frame, learn, seed=29)[:learn]
    tracker = DriftTracker(window_frames=50, learn_frames=learn, baseline_dir=tmp_path)
    assert tracker.rule("cam-a") == DEFAULT_RULE  # learning sorts frames before any baseline exists
    for frame, regime in day:
        tracker.observe("cam-a", frame, regime)
    first = load_baseline(baseline_path(tmp_path, "cam-a"))
    assert set(first.regimes) == {DAY} and first.rule == DEFAULT_RULE
    for frame, regime in night:
        tracker.observe("cam-a", frame, regime)
    both = load_baseline(baseline_path(tmp_path, "cam-a"))
    assert set(both.regimes) == {DAY, NIGHT} and both.frames == 2 * learn
    np.testing.assert_array_equal(both.regimes[DAY].samples["brightness"], first.regimes[DAY].samples["brightness"])

    loaded = load_baselines(tmp_path)
    restarted = DriftTracker(window_frames=50, learn_frames=learn, baseline_dir=tmp_path, baselines=loaded)
    for frame, regime in measured(colour_photos, day_frame, learn, seed=30) + night:
        restarted.observe("cam-a", frame, regime)
    assert restarted.baseline("cam-a") is loaded["cam-a"]  # nothing re-learned


class InterleavingLock:
    """A lock that runs ``then`` once, right after it is first released: another thread's turn."""

    def __init__(self, then: Callable[[], None]) -> None:
        self._lock = threading.Lock()
        self._then: Callable[[], None] | None = then

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self._lock.release()
        then, self._then = self._then, None
        if then is not None:
            then()


def test_two_regimes_that_finish_learning_at_once_are_both_kept(
    tmp_path: Path, colour_photos: list[np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Night's buffer completes while day's baseline is being learned, as soon as day's learning first
    releases the tracker's lock: the baseline ends with both regimes, in memory and in its file."""
    learn = 12
    day = [frame for frame, _ in measured(colour_photos, day_frame, learn, seed=31)[:learn]]
    night = [frame for frame, _ in measured(colour_photos, night_ir_frame, learn, seed=32)[:learn]]
    tracker = DriftTracker(window_frames=50, learn_frames=learn, baseline_dir=tmp_path)
    tracker._learned |= {("cam-a", DAY), ("cam-a", NIGHT)}  # as observe() marks a completed buffer
    monkeypatch.setattr(tracker, "_lock", InterleavingLock(lambda: tracker._learn("cam-a", NIGHT, night)))
    tracker._learn("cam-a", DAY, day)
    learned = tracker.baseline("cam-a")
    assert learned is not None and set(learned.regimes) == {DAY, NIGHT}
    assert set(load_baseline(baseline_path(tmp_path, "cam-a")).regimes) == {DAY, NIGHT}


def test_a_source_forgotten_while_its_baseline_is_computed_gets_none(
    tmp_path: Path, colour_photos: list[np.ndarray]
) -> None:
    """A camera removed while its completed buffer is being turned into a reference (outside the
    lock): the reference is dropped, neither kept in memory nor written for the next camera of that id."""
    learn = 12
    day = [frame for frame, _ in measured(colour_photos, day_frame, learn, seed=31)[:learn]]
    tracker = DriftTracker(window_frames=50, learn_frames=learn, baseline_dir=tmp_path)
    tracker._learned.add(("cam-a", DAY))  # as observe() marks a completed buffer, before _learn runs
    tracker.forget("cam-a")
    tracker._learn("cam-a", DAY, day)
    assert tracker.baseline("cam-a") is None
    assert not baseline_path(tmp_path, "cam-a").exists()


def test_format_1_files_are_read_as_one_regime(tmp_path: Path, day_baseline: Baseline) -> None:
    reference = day_baseline.regimes[ALL]
    old = {
        "format": "vision-service-baseline/1",
        "source": "street",
        "created": "2025-01-31T12:00:00Z",
        "origin": "before regimes",
        "frames": reference.frames,
        "settings": {},
        "summary": reference.summary(),
        "samples": {name: values.tolist() for name, values in reference.samples.items()},
    }
    path = tmp_path / "street.json"
    path.write_text(json.dumps(old))
    loaded = load_baseline(path)
    assert loaded.rule is None and set(loaded.regimes) == {ALL}
    np.testing.assert_array_equal(loaded.regimes[ALL].samples["brightness"], reference.samples["brightness"])
    tracker = DriftTracker(baselines={"street": loaded})
    assert tracker.rule("street") is None
    report = quality.measure(np.full((64, 64, 3), 90, np.uint8))
    tracker.record(Measurement("street", 64, 64, report, [], StageTimes(), "cpu"))
    assert tracker.current_regimes() == {"street": ALL}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"regimes": {"Day!": {"frames": 1, "samples": {"brightness": [0.5]}}}}, "regime name"),
        ({"regimes": {"dusk": {"frames": 1, "samples": {"brightness": [0.5]}}}}, "not among"),
        ({"rule": {"colour": 3}}, "unknown regime rule"),
        ({"rule": None, "regimes": {"day": {"frames": 1, "samples": {"brightness": [0.5]}}}}, "not among"),
        ({"regimes": {}}, "'regimes'"),
    ],
)
def test_bad_regimes_are_refused(change: dict[str, object], message: str) -> None:
    document = {
        "format": "vision-service-baseline/2",
        "source": "street",
        "rule": DEFAULT_RULE.to_json(),
        "regimes": {"day": {"frames": 1, "samples": {"brightness": [0.5]}}},
        **change,
    }
    with pytest.raises(BaselineError, match=message):
        Baseline.from_json(document)


# ------------------------------------------------------------------ baseline files


def test_baseline_file_round_trip(tmp_path: Path, day_baseline: Baseline) -> None:
    path = baseline_path(tmp_path, "street")
    save_baseline(day_baseline, path)
    document = json.loads(path.read_text())
    assert document["source"] == "street" and document["frames"] == 512
    assert document["format"] == "vision-service-baseline/2" and document["rule"] is None
    assert document["regimes"]["all"]["summary"]["brightness"]["count"] == 512
    loaded = load_baseline(path)
    assert (loaded.source, loaded.frames, loaded.origin, loaded.created) == (
        day_baseline.source,
        day_baseline.frames,
        day_baseline.origin,
        day_baseline.created,
    )
    assert loaded.rule is None and set(loaded.regimes) == {ALL}
    assert set(loaded.regimes[ALL].samples) == set(day_baseline.regimes[ALL].samples)
    for signal, values in day_baseline.regimes[ALL].samples.items():
        np.testing.assert_array_equal(loaded.regimes[ALL].samples[signal], values)


def test_large_baselines_are_thinned_to_evenly_spaced_order_statistics() -> None:
    values = np.sort(np.random.default_rng(2).lognormal(size=3 * MAX_SAMPLES))
    thinned = thin(values)
    assert thinned.size == MAX_SAMPLES
    assert (thinned[0], thinned[-1]) == (values[0], values[-1])
    assert ks_statistic(values, thinned) < 2 / MAX_SAMPLES


def test_unusable_baseline_files_are_skipped(tmp_path: Path, day_baseline: Baseline) -> None:
    save_baseline(day_baseline, baseline_path(tmp_path, "street"))
    (tmp_path / "broken.json").write_text('{"format": "vision-service-baseline/1", "source": "broken"')
    (tmp_path / "other.json").write_text(json.dumps({"format": "something else"}))
    assert set(load_baselines(tmp_path)) == {"street"}


# ------------------------------------------------------------------ the service and the CLI


@pytest.fixture
def learning_settings(tmp_path: Path, model_path: str) -> Settings:
    return Settings(
        model=model_path,
        device="cpu",
        sources=["cam-a"],
        baseline_dir=tmp_path / "baselines",
        baseline_learn_frames=4,
        drift_window_frames=50,
    )


def metric_values(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = client.get("/metrics").text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.fixture
def learned_app(learning_settings: Settings, bus_bytes: bytes) -> Iterator[list[int]]:
    """A service that learns cam-a's baseline from its first 4 frames; yields the detection counts it saw."""
    from vision_service.api.main import create_app

    app = create_app(learning_settings, load_model=False)
    app.state.service.load_model()
    counts = []
    with TestClient(app) as client:
        # Two daylight scenes (not zidane.jpg: its mean level of 0.23 is twilight).
        for image in (bus_bytes, encode_jpeg(_bgr(skimage.data.astronaut()))) * 2:
            response = client.post("/v1/detect?source=cam-a", content=image, headers={"content-type": "image/jpeg"})
            assert response.status_code == 200, response.text
            counts.append(response.json()["count"])
        values = metric_values(client)
    assert values[("vision_baseline_mean", (("signal", "detections"), ("source", "cam-a")))] == np.mean(counts)
    yield counts


def test_learned_baseline_is_written_and_survives_a_restart(
    learning_settings: Settings, learned_app: list[int]
) -> None:
    from vision_service.api.main import create_app

    assert learning_settings.baseline_dir is not None
    path = baseline_path(learning_settings.baseline_dir, "cam-a")
    learned = load_baseline(path)
    assert learned.frames == 4 and learned.origin == "learned from the first 4 frames of each regime"
    assert learned.rule == DEFAULT_RULE and set(learned.regimes) == {DAY}  # daylight photographs
    assert sorted(learned.regimes[DAY].samples["detections"]) == sorted(learned_app)
    assert set(learned.regimes[DAY].samples) == set(SIGNALS)
    assert learned.settings["model"] == Path(learning_settings.model).name

    restarted = create_app(learning_settings, load_model=False)  # a new process would do the same
    with TestClient(restarted) as client:
        values = metric_values(client)
    for signal in SIGNALS:
        key = ("vision_baseline_mean", (("signal", signal), ("source", "cam-a")))
        assert values[key] == pytest.approx(learned.regimes[DAY].mean(signal)), signal
    assert values[("vision_baseline_mean", (("signal", "detections"), ("source", "cam-a")))] == np.mean(learned_app)


def fitted(rule: RegimeRule | None) -> bool:
    """The default rule, its grain level fitted to the camera's daylight (``baseline build``'s default)."""
    assert rule is not None and rule.day_noise is not None
    return dataclasses.replace(rule, day_noise=DEFAULT_RULE.day_noise) == DEFAULT_RULE and rule.day_noise >= 2.0


def test_cli_baseline_build_writes_the_source_baseline(
    tmp_path: Path, model_path: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    photos_dir = tmp_path / "reference"
    (photos_dir / "day").mkdir(parents=True)
    (photos_dir / "day" / "bus.jpg").write_bytes((ASSETS / "bus.jpg").read_bytes())
    (photos_dir / "zidane.jpg").write_bytes((ASSETS / "zidane.jpg").read_bytes())
    (photos_dir / "truncated.jpg").write_bytes((ASSETS / "bus.jpg").read_bytes()[:2000])
    baseline_dir = tmp_path / "baselines"
    monkeypatch.setenv("VISION_MODEL", model_path)
    monkeypatch.setenv("VISION_DEVICE", "cpu")
    monkeypatch.setenv("VISION_BASELINE_DIR", str(baseline_dir))

    assert cli_main(["baseline", "build", str(photos_dir), "--source", "cam-a"]) == 0

    out = capsys.readouterr()
    assert "truncated.jpg" in out.err  # reported and skipped
    assert "3/3" in out.err  # the progress bar went over every file
    assert str(baseline_path(baseline_dir, "cam-a")) in out.out
    baseline = load_baselines(baseline_dir)["cam-a"]
    assert baseline.frames == 2
    # bus.jpg is day; zidane.jpg, mean level 0.23, is twilight.
    assert fitted(baseline.rule) and {r: ref.frames for r, ref in baseline.regimes.items()} == {
        DAY: 1,
        TWILIGHT: 1,
    }
    samples = baseline.regimes[DAY].samples
    assert set(samples) == set(SIGNALS)
    assert samples["detections"].max() >= 4  # the bus photo shows at least four people
    assert 0.25 <= samples["confidence"].min() <= samples["confidence"].max() <= 1
    assert set(samples) == set(baseline.regimes[TWILIGHT].samples)


def test_cli_learns_day_and_night_regimes_from_a_recorded_stream(
    tmp_path: Path, model_path: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A recording of a camera that goes from colour day to its infrared night mode, two frames a second."""
    rng = np.random.default_rng(40)
    street = photographs()[0]
    day = [gaussian_noise(street, 1.5, rng=rng) for _ in range(6)]
    frames = day + [infrared(street, 0.02, rng=rng) for _ in range(4)]
    video = write_video(tmp_path / "evening.mp4", frames, fps=2)
    monkeypatch.setenv("VISION_MODEL", model_path)
    monkeypatch.setenv("VISION_DEVICE", "cpu")

    out = tmp_path / "street.json"
    assert cli_main(["baseline", "build", str(video), "--source", "street", "--out", str(out), "--every", "0.5"]) == 0
    printed = capsys.readouterr().out
    assert "regime day: 6 frames" in printed and "regime night: 4 frames" in printed
    baseline = load_baseline(out)
    assert fitted(baseline.rule) and baseline.regimes[DAY].frames == 6 and baseline.regimes[NIGHT].frames == 4
    # Grey, up to the slight tint of OpenCV's MPEG-4 colour conversions.
    assert baseline.regimes[NIGHT].samples["colourfulness"].max() < DEFAULT_RULE.monochrome_colourfulness

    single = tmp_path / "single.json"
    argv = ["baseline", "build", str(video), "--source", "street", "--out", str(single), "--single-regime"]
    assert cli_main([*argv, "--every", "1"]) == 0
    one = load_baseline(single)
    assert one.rule is None and set(one.regimes) == {ALL} and one.frames == 5  # one frame a second

    hourly = tmp_path / "hourly.json"
    argv = ["baseline", "build", str(video), "--source", "street", "--out", str(hourly), "--every", "0.5"]
    assert cli_main([*argv, "--hours", "6,18", "--start", "2025-06-01T17:59:57"]) == 0
    by_hour = load_baseline(hourly)
    # Frames at 17:59:57 .. 17:59:59.5 are before 18:00, the rest after; the IR frames come last.
    assert {r: ref.frames for r, ref in by_hour.regimes.items()} == {"day-h06": 6, "night-h18": 4}
