"""Camera health: is the camera covered, turned away, defocused, obscured, or is its picture frozen?

Each camera has one :class:`CameraHealth`, fed every processed frame's :class:`Measurement` (its
quality report and the engine's scene thumbnail, :mod:`quality.scene`) by the camera's stats
(:mod:`vision_service.cameras.stats`). It keeps what the engine must not: state across frames.

**Reference scene.** Per regime (``day`` / ``twilight`` / ``night``, the light of
:data:`vision_service.regimes.DEFAULT_RULE`: an infrared night looks different from the day), the
camera's first ``reference_frames`` frames of that regime become its reference: the mean gradient
map of their thumbnails, and the medians of three exposure-invariant numbers (below). Until a
regime has its own reference, the first-learned other regime's is used; and another regime learns
only from frames that show no tampering against that reference (nightfall does not move, cover or
defocus a camera; a covered lens, dark as a night, must not be learned as the night, nor a hazy
lens, bright as a day, as the day).

Health sorts frames with :data:`~vision_service.regimes.DEFAULT_RULE`, not with the rule fitted
into the source's drift baseline, on purpose: a camera's health is its own, learned from its own
frames, and independent of drift baselines. A camera may have no baseline, a single-regime one,
one with hour buckets (regimes health would have to learn per hour), or one that is rebuilt or
reloaded while it runs; none of that should re-sort the references health has already learned.
The regime only picks which learned reference a frame is compared with, and the four scores are
exposure-invariant, so the fitted rule's finer twilight boundary would change little.
:meth:`CameraHealth.reset` forgets both (after a PTZ move, or when the scene changed for good); a
change of frame size does too.

**Evidence per frame**, against the reference of the frame's regime; all four are invariant to
exposure and gain, so dusk and auto-gain do not move them:

* ``moved``: score = structural similarity of the gradient maps
  (:func:`quality.scene.structural_similarity`); counts below :data:`MOVED_SIMILARITY`, unless covered;
* ``covered``: score = low-res contrast (:func:`quality.scene.low_res_contrast`) / the reference's;
  counts below :data:`COVERED_CONTRAST_RATIO` *and* when the layout is gone (similarity below
  :data:`MOVED_SIMILARITY`);
* ``defocused``: score = ``sharpness / (255 brightness)²`` / the reference's; counts below
  :data:`DEFOCUSED_SHARPNESS_RATIO`, unless covered or obscured;
* ``obscured``: score = ``contrast / brightness`` / the reference's; counts below
  :data:`OBSCURED_CONTRAST_RATIO` *and* with a sharpness ratio below :data:`OBSCURED_SHARPNESS_RATIO`,
  unless covered.

The scores are exported as ``vision_camera_tamper_score{camera, kind}``.

A covered lens is near-uniform *and* has lost the scene's layout; a genuinely dark night keeps its
layout (similarity above 0.85 for a colour night at 1 % and an infrared night at 0.5 % of
daylight, tests/test_quality_scene.py), so it never reads as covered. Haze or paint lift the
blacks (contrast / brightness falls) and take the detail with them; a defocused lens loses detail
but keeps its contrast. Measured values on real photographs, for each kind and its look-alikes,
are in docs/camera-health.md.

**Minimum duration.** A kind counts (``vision_camera_tampered{kind} = 1``) once its evidence held
on every frame for ``min_seconds``; it clears once the evidence has been absent for
``min_seconds``: a person walking past the lens or one odd frame changes nothing.

**Frozen picture.** Each thumbnail is compared with the previous frame's
(:func:`quality.scene.frame_change`, the median absolute change). The frame is *new* when the
change exceeds both ``FROZEN_FLOOR / k`` (:data:`FROZEN_FLOOR`: what a codec re-encoding one
frozen buffer drifts by, with ``k`` the thumbnail's downscale) and :data:`FROZEN_NOISE_FRACTION`
of what the frame's own sensor noise alone would cause (:func:`quality.scene.noise_change` with
its ``noise_sigma``). A re-sent identical buffer changes by 0, or by codec drift; a still scene
from a live camera changes by its noise (~0.95 sigma / k) and by every I-frame of a compressed
stream (~0.8-1.3 grey levels on the thumbnail, measured). A perfectly still, nearly noiseless
scene (sigma below ~1.3 grey levels of luma) sent uncompressed would read frozen: to the detector
it is the same picture. ``vision_camera_new_frame_age_seconds``
is the time since the last new frame; ``VisionCameraFrozen`` fires when it passes
``vision:threshold:camera_frozen_seconds`` while frames keep arriving.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from quality import QualityReport
from quality.luma import DEFAULT_ANALYSIS_SIZE
from quality.scene import (
    downscale,
    frame_change,
    gradient_map,
    low_res_contrast,
    noise_change,
    structural_similarity,
)
from vision_service.measurement import Measurement
from vision_service.regimes import DEFAULT_RULE

COVERED = "covered"
MOVED = "moved"
DEFOCUSED = "defocused"
OBSCURED = "obscured"
#: The values of the ``kind`` label.
KINDS: tuple[str, ...] = (COVERED, MOVED, DEFOCUSED, OBSCURED)

#: ``moved`` below this similarity to the reference's gradient map (on photographs: a 10 % pan read
#: <= 0.46, a camera shaking by 1 % >= 0.9, night, blur and haze >= 0.85).
MOVED_SIMILARITY = 0.5
#: ``covered`` below this fraction of the reference's low-res contrast (covered lenses read <= 0.31,
#: dark nights as low as 0.31 too, but they keep their layout).
COVERED_CONTRAST_RATIO = 0.5
#: ``defocused`` below this fraction of the reference's exposure-normalised sharpness.
DEFOCUSED_SHARPNESS_RATIO = 0.3
#: ``obscured`` below this fraction of the reference's contrast / brightness ...
OBSCURED_CONTRAST_RATIO = 0.5
#: ... together with a sharpness ratio below this.
OBSCURED_SHARPNESS_RATIO = 0.3
#: A frame is new when its thumbnail changed (median) by more than this many grey levels *at
#: analysis scale* divided by ``k`` (1.2 / 10 = 0.12 on the thumbnail of a 640 px frame): a codec
#: re-encoding one frozen buffer drifts by up to ~0.8 / k (measured on GStreamer's openh264 through
#: OpenCV and PyAV, 320 and 640 px), the block-correlated error of re-quantising the same picture ...
FROZEN_FLOOR = 1.2
#: ... and by more than this fraction of the change its sensor noise alone would cause.
FROZEN_NOISE_FRACTION = 0.5
#: Brightness below this is treated as this in the ratios (a black frame has no meaningful ratio).
MIN_BRIGHTNESS = 0.02

#: Default minimum duration of a tampering condition, seconds (VISION_TAMPER_MIN_SECONDS).
MIN_SECONDS = 20.0
#: Default number of a regime's first frames its reference is learned from (VISION_TAMPER_REFERENCE_FRAMES).
REFERENCE_FRAMES = 20


@dataclass(frozen=True)
class HealthConfig:
    """What every camera's health is told: durations, reference size, the analysis size of its thumbnails."""

    min_seconds: float = MIN_SECONDS
    reference_frames: int = REFERENCE_FRAMES
    analysis_size: int = DEFAULT_ANALYSIS_SIZE


def contrast_ratio(report: QualityReport) -> float:
    """``contrast / brightness``: RMS contrast relative to the mean level, invariant to gain."""
    return report.contrast / max(report.brightness, MIN_BRIGHTNESS)


def detail(report: QualityReport) -> float:
    """``sharpness / (255 brightness)²``: Laplacian variance relative to the squared mean level, invariant to gain."""
    return report.sharpness / (255.0 * max(report.brightness, MIN_BRIGHTNESS)) ** 2


@dataclass(frozen=True)
class SceneReference:
    """What one regime of a camera normally looks like."""

    gradient: np.ndarray  # mean gradient map of the learning frames' thumbnails
    low_res_contrast: float
    contrast_ratio: float
    detail: float
    frames: int


@dataclass(frozen=True)
class Evidence:
    """One frame against its reference: the score of each kind and which kinds it shows."""

    scores: dict[str, float]
    shows: frozenset[str]


def evidence(
    report: QualityReport, thumb: np.ndarray, reference: SceneReference, gradient: np.ndarray | None = None
) -> Evidence:
    """Scores and conditions of one frame (module docstring); pure. ``gradient`` is the thumbnail's
    :func:`~quality.scene.gradient_map` when the caller already has it."""
    if thumb.shape != reference.gradient.shape:
        raise ValueError(f"thumbnail {thumb.shape} does not match the reference {reference.gradient.shape}")
    similarity = structural_similarity(gradient_map(thumb) if gradient is None else gradient, reference.gradient)
    scores = {
        MOVED: similarity,
        COVERED: low_res_contrast(thumb) / max(reference.low_res_contrast, 1e-6),
        DEFOCUSED: detail(report) / max(reference.detail, 1e-12),
        OBSCURED: contrast_ratio(report) / max(reference.contrast_ratio, 1e-6),
    }
    lost = similarity < MOVED_SIMILARITY
    covered = lost and scores[COVERED] < COVERED_CONTRAST_RATIO
    obscured = (
        not covered and scores[OBSCURED] < OBSCURED_CONTRAST_RATIO and scores[DEFOCUSED] < OBSCURED_SHARPNESS_RATIO
    )
    shows = set()
    if covered:
        shows.add(COVERED)
    elif lost:
        shows.add(MOVED)
    if obscured:
        shows.add(OBSCURED)
    elif not covered and scores[DEFOCUSED] < DEFOCUSED_SHARPNESS_RATIO:
        shows.add(DEFOCUSED)
    return Evidence(scores=scores, shows=frozenset(shows))


@dataclass
class _Learning:
    gradients: list[np.ndarray] = field(default_factory=list)
    low_res_contrast: list[float] = field(default_factory=list)
    contrast_ratio: list[float] = field(default_factory=list)
    detail: list[float] = field(default_factory=list)

    def add(self, report: QualityReport, thumb: np.ndarray, gradient: np.ndarray) -> None:
        self.gradients.append(gradient)
        self.low_res_contrast.append(low_res_contrast(thumb))
        self.contrast_ratio.append(contrast_ratio(report))
        self.detail.append(detail(report))

    def reference(self) -> SceneReference:
        return SceneReference(
            gradient=np.mean(self.gradients, axis=0).astype(np.float32),
            low_res_contrast=float(np.median(self.low_res_contrast)),
            contrast_ratio=float(np.median(self.contrast_ratio)),
            detail=float(np.median(self.detail)),
            frames=len(self.gradients),
        )


@dataclass(frozen=True)
class HealthState:
    """What the last frame left: which kinds count, their scores (empty while learning), the regime."""

    tampered: frozenset[str]
    scores: dict[str, float]
    regime: str


class CameraHealth:
    """Tampering and frozen-picture state of one camera. Thread-safe.

    Durations and ages are on :func:`time.monotonic`; ``update`` and ``new_frame_age`` may be given
    ``now`` instead (the evaluation script feeds simulated time).
    """

    def __init__(self, config: HealthConfig | None = None) -> None:
        self.config = config or HealthConfig()
        self._lock = threading.Lock()
        self._references: dict[str, SceneReference] = {}
        self._learning: dict[str, _Learning] = {}
        self._since: dict[str, float] = {}  # kind -> when its evidence started (continuously)
        self._gone_since: dict[str, float] = {}  # active kind -> when its evidence stopped
        self._active: set[str] = set()
        self._scores: dict[str, float] = {}
        self._regime = ""
        self._previous: np.ndarray | None = None
        self._last_new: float | None = None
        self._last_new_wall: float | None = None
        self._shape: tuple[int, ...] | None = None

    # -- frames ---------------------------------------------------------------------------------

    def update(self, m: Measurement, now: float | None = None) -> HealthState:
        """Take one processed frame of the camera; return the state after it."""
        if m.scene is None:  # an engine that made no thumbnail: nothing to compare
            return self.state()
        now = time.monotonic() if now is None else now
        thumb = m.scene
        report = m.quality
        regime = DEFAULT_RULE.light(report)
        gradient = gradient_map(thumb)  # once per frame: for learning and for every comparison
        with self._lock:
            if self._shape is not None and thumb.shape != self._shape:
                self._forget()  # the camera's frame size changed: its old references do not apply
            self._shape = thumb.shape
            self._frozen_check(m, thumb, now)
            self._regime = regime
            reference = self._references.get(regime)
            found: Evidence | None = None  # this frame against ``other``, when learning needed it
            other: SceneReference | None = None
            if reference is None:
                other = next((r for name, r in self._references.items() if name != regime), None)
                # A camera is not tampered with by nightfall: learn another regime only from frames that
                # show nothing against the reference it has (a covered lens is dark too, and must not
                # become "night"; haze is bright, and must not become "day").
                found = None if other is None else evidence(report, thumb, other, gradient)
                if found is None or not found.shows:
                    learning = self._learning.setdefault(regime, _Learning())
                    learning.add(report, thumb, gradient)
                    if len(learning.gradients) >= self.config.reference_frames:
                        reference = self._references[regime] = learning.reference()
                        del self._learning[regime]
                reference = reference or other  # meanwhile, the other regime's reference (if any)
            if reference is None:
                self._scores = {}
                shows: frozenset[str] = frozenset()
            else:
                if found is None or reference is not other:  # else: already compared with it above
                    found = evidence(report, thumb, reference, gradient)
                self._scores, shows = found.scores, found.shows
            self._advance(shows, now)
            return self._state()

    def _frozen_check(self, m: Measurement, thumb: np.ndarray, now: float) -> None:
        previous, self._previous = self._previous, thumb
        if previous is None or previous.shape != thumb.shape:
            self._mark_new(now)
            return
        analysis_side = min(max(m.width, m.height), self.config.analysis_size)
        k = downscale(analysis_side, max(thumb.shape))
        change = frame_change(thumb, previous)
        if change > max(FROZEN_FLOOR / k, FROZEN_NOISE_FRACTION * noise_change(m.quality.noise_sigma, k)):
            self._mark_new(now)

    def _mark_new(self, now: float) -> None:
        self._last_new = now
        self._last_new_wall = time.time()

    def _advance(self, shows: frozenset[str], now: float) -> None:
        for kind in KINDS:
            if kind in shows:
                self._gone_since.pop(kind, None)
                since = self._since.setdefault(kind, now)
                if kind not in self._active and now - since >= self.config.min_seconds:
                    self._active.add(kind)
            else:
                self._since.pop(kind, None)
                if kind in self._active:
                    gone = self._gone_since.setdefault(kind, now)
                    if now - gone >= self.config.min_seconds:
                        self._active.discard(kind)
                        del self._gone_since[kind]

    # -- reading --------------------------------------------------------------------------------

    def state(self) -> HealthState:
        with self._lock:
            return self._state()

    def _state(self) -> HealthState:
        return HealthState(tampered=frozenset(self._active), scores=dict(self._scores), regime=self._regime)

    def new_frame_age(self, now: float | None = None) -> float:
        """Seconds since the last new frame (content changed); NaN before the first frame."""
        now = time.monotonic() if now is None else now
        with self._lock:
            last = self._last_new
        return math.nan if last is None else max(now - last, 0.0)

    def view(self) -> dict[str, Any]:
        """What the camera API shows."""
        age = self.new_frame_age()
        with self._lock:
            return {
                "tampered": sorted(self._active),
                "scores": {kind: round(value, 4) for kind, value in self._scores.items()},
                "regime": self._regime or None,
                "references": {regime: ref.frames for regime, ref in sorted(self._references.items())},
                "learning": {regime: len(part.gradients) for regime, part in sorted(self._learning.items())},
                "new_frame_age_seconds": None if math.isnan(age) else round(age, 3),
                "last_new_frame_at": self._last_new_wall,
            }

    # -- reset ----------------------------------------------------------------------------------

    def reset(self) -> HealthState:
        """Forget the reference scenes and every tampering state; learn again from the next frames."""
        with self._lock:
            self._forget()
            return self._state()

    def _forget(self) -> None:
        self._references.clear()
        self._learning.clear()
        self._since.clear()
        self._gone_since.clear()
        self._active.clear()
        self._scores = {}
