"""Camera health and per-regime drift on sequences built from real photographs: the tables of docs/camera-health.md.

    python scripts/eval_camera_health.py            # about 10 minutes on one core
    python scripts/eval_camera_health.py --json     # the same figures as JSON

Everything is simulated honestly from real photographs (``quality.simulate``) and measured with
the service's own code: ``quality.measure_scene`` (what both engines compute per frame),
:class:`vision_service.cameras.health.CameraHealth` (tampering and frozen pictures) and
:class:`vision_service.drift.DriftTracker` (drift windows and PSI / KS). Time is simulated: one
frame every :data:`STEP` seconds. No detector runs (the quality signals are what drift and camera
health read), so drift covers the seven quality signals.

**The cameras.** Each watches a real photograph through ``camera_view`` with a little shake
(+-0.4 % of the view, every frame) and sensor noise, and has auto exposure: by day it restores
the mean level (gain up to x16), at dusk the light falls from 1 to 0.003 of daylight, and once
gain runs out the frames darken; below 1 % of daylight the camera switches to its infrared mode
(monochrome, lit by its own illuminator at 2 % of daylight), and back at dawn.

**Part 1, tampering and frozen pictures.** A timeline per camera: day, then each tamper kind for
4 minutes with daylight in between (``covered``: a hand over the lens; ``moved``: panned by 10 %
and rolled 8 degrees; ``defocused``: Gaussian blur sigma 3 px; ``obscured``: haze / paint,
density 0.5; ``frozen``: the stream re-sends one frame for 4 minutes), then dusk, an infrared
night (with the lens covered for 4 minutes in the middle of it), dawn and day again. Detection
delay is from the start of an event to the first frame where the kind counts
(``vision_camera_tampered``; for frozen: ``vision_camera_new_frame_age_seconds`` above
``vision:threshold:camera_frozen_seconds``, read from compose/prometheus/rules/thresholds.yml).
A false alarm is a kind starting to count outside an event of that kind (dusk, night, dawn,
shake and noise are all in the timeline).

**Part 2, dusk drift alerts.** A recorded day-night cycle per camera (day 2 h, dusk 30 min,
night 2 h, dawn 30 min) makes three baselines: *single-regime, daylight* (the day's frames: the
usual "reference images"), *single-regime, whole cycle* (every frame pooled) and *per-regime* (the
same frames sorted by :data:`vision_service.regimes.DEFAULT_RULE` into day, twilight and night).
Three more cycles are then watched: two ordinary ones and one whose infrared illuminator gives a
fifth of its light (a night darker and noisier than the usual nights). ``VisionInputDrift`` is
evaluated as the shipped rule is: every 60 s, per signal, test and regime (twilight excluded), PSI
above 0.25 or KS above 0.2 from a window of at least 100 frames (default window: 500 frames),
held for 15 minutes.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import quality  # noqa: E402
from quality.simulate import blur, camera_view, covered, gaussian_noise, haze, infrared, low_light  # noqa: E402
from vision_service.cameras.health import KINDS, CameraHealth, HealthConfig  # noqa: E402
from vision_service.drift import Baseline, DriftTracker  # noqa: E402
from vision_service.drift.frame_values import frame_signals  # noqa: E402
from vision_service.measurement import Measurement, StageTimes  # noqa: E402
from vision_service.regimes import DEFAULT_RULE, alerted  # noqa: E402

STEP = 2.0  # seconds between frames
MAX_GAIN = 16.0
IR_ON, IR_OFF = 0.01, 0.02  # the camera's day/night switch, fraction of daylight (with hysteresis)
IR_LIGHT = 0.02  # the illuminator, fraction of daylight
THRESHOLDS = REPO / "compose" / "prometheus" / "rules" / "thresholds.yml"
# VisionInputDrift as shipped (compose/prometheus/rules): thresholds, minimum window, `for:`.
PSI_ACT, KS_ACT, MIN_WINDOW, ALERT_FOR, SCRAPE = 0.25, 0.2, 100, 900.0, 60.0
WINDOW_FRAMES = 500  # VISION_DRIFT_WINDOW_FRAMES default
EVENT_SECONDS = 240


@dataclass(frozen=True)
class CameraSpec:
    name: str
    photo: str
    size: tuple[int, int]  # view width, height
    scale: float  # view pixels per scene pixel


CAMERAS = (
    CameraSpec("street", "bus.jpg", (240, 320), 0.4),
    CameraSpec("cafe", "coffee", (320, 240), 0.7),
    CameraSpec("plaza", "astronaut", (256, 256), 0.6),
)


def load(name: str) -> np.ndarray:
    if name.endswith(".jpg"):
        from ultralytics.utils import ASSETS

        image = cv2.imread(str(ASSETS / name))
        assert image is not None, name
        return image
    import skimage.data

    return np.ascontiguousarray(getattr(skimage.data, name)()[:, :, ::-1])


class Camera:
    """A camera with auto exposure and an infrared night mode, looking at a real photograph."""

    def __init__(self, spec: CameraSpec, seed: int, ir_light: float = IR_LIGHT) -> None:
        self.spec = spec
        # The scene at the view's scale, once (area-averaged, as a sensor with fewer pixels records it).
        self.scene = cv2.resize(load(spec.photo), None, fx=spec.scale, fy=spec.scale, interpolation=cv2.INTER_AREA)
        self.rng = np.random.default_rng(seed)
        self.ir_light = ir_light
        self.infrared = False

    def view(self, **kwargs: Any) -> np.ndarray:
        shake = self.rng.uniform(-0.004, 0.004, 2)
        centre = kwargs.pop("centre", (0.5, 0.5))
        centre = (centre[0] + shake[0], centre[1] + shake[1])
        return camera_view(self.scene, self.spec.size, centre=centre, **kwargs)

    def shoot(self, light: float, view: np.ndarray | None = None) -> np.ndarray:
        """One frame at ``light`` of daylight: colour with auto exposure, or infrared below the switch."""
        if self.infrared and light > IR_OFF:
            self.infrared = False
        elif not self.infrared and light < IR_ON:
            self.infrared = True
        view = self.view() if view is None else view
        if self.infrared:
            return infrared(view, self.ir_light, rng=self.rng)
        if light >= 0.999:
            return gaussian_noise(view, 1.5, rng=self.rng)  # daylight: a little sensor noise
        return low_light(view, light, gain=min(1.0 / light, MAX_GAIN), rng=self.rng)


def measurement(bgr: np.ndarray) -> Measurement:
    report, thumb = quality.measure_scene(bgr)
    return Measurement("camera", bgr.shape[1], bgr.shape[0], report, [], StageTimes(), "cpu", scene=thumb)


def ramp(start: float, end: float, seconds: float) -> Iterator[float]:
    """Light falling or rising exponentially from ``start`` to ``end`` over ``seconds``."""
    for t in np.arange(0.0, seconds, STEP):
        yield math.exp(math.log(start) + (math.log(end) - math.log(start)) * t / seconds)


# ------------------------------------------------------------------ part 1: tampering and frozen pictures

Frame = tuple[str, Callable[[Camera], np.ndarray]]  # (event kind or "" for normal, how to shoot it)


def timeline() -> Iterator[tuple[str, str, Callable[[Camera], np.ndarray]]]:
    """(phase, event kind or "", frame maker) for every frame of the tampering timeline."""

    def lit(light: float) -> Callable[[Camera], np.ndarray]:
        return lambda cam: cam.shoot(light)

    def day(cam: Camera) -> np.ndarray:
        return cam.shoot(1.0)

    def n(seconds: float) -> int:
        return int(seconds / STEP)

    for _ in range(n(600)):
        yield "day", "", day
    events: list[tuple[str, Callable[[Camera], np.ndarray]]] = [
        ("covered", lambda cam: covered(cam.view(), light=0.03, rng=cam.rng)),
        ("moved", lambda cam: cam.shoot(1.0, cam.view(centre=(0.4, 0.55), roll=8))),
        ("defocused", lambda cam: cam.shoot(1.0, blur(cam.view(), 3.0))),
        ("obscured", lambda cam: cam.shoot(1.0, haze(cam.view(), 0.5))),
    ]
    for kind, make in events:
        for _ in range(n(EVENT_SECONDS)):
            yield "day", kind, make
        for _ in range(n(300)):
            yield "day", "", day
    frozen: dict[str, np.ndarray] = {}

    def still(cam: Camera) -> np.ndarray:
        return frozen.setdefault(cam.spec.name, cam.shoot(1.0))

    for _ in range(n(EVENT_SECONDS)):
        yield "day", "frozen", still
    for _ in range(n(300)):
        yield "day", "", day
    for light in ramp(1.0, 0.003, 1800):
        yield "dusk", "", lit(light)
    for _ in range(n(900)):
        yield "night", "", lambda cam: cam.shoot(0.003)
    for _ in range(n(EVENT_SECONDS)):  # a hand over the lens at night: the illuminator lights it up
        yield (
            "night",
            "covered",
            lambda cam: cv2.cvtColor(
                cv2.cvtColor(covered(cam.view(), light=0.02, rng=cam.rng), cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR
            ),
        )
    for _ in range(n(900)):
        yield "night", "", lambda cam: cam.shoot(0.003)
    for light in ramp(0.003, 1.0, 1800):
        yield "dawn", "", lit(light)
    for _ in range(n(600)):
        yield "day", "", day


def frozen_threshold() -> float:
    match = re.search(
        r"record: vision:threshold:camera_frozen_seconds\s+expr: vector\(([\d.]+)\)", THRESHOLDS.read_text()
    )
    assert match, "vision:threshold:camera_frozen_seconds not found in thresholds.yml"
    return float(match.group(1))


@dataclass
class KindResult:
    events: int = 0
    delays: list[float] = field(default_factory=list)
    missed: int = 0
    false_alarms: int = 0
    false_alarm_phases: Counter[str] = field(default_factory=Counter)


def tampering(spec: CameraSpec, seed: int, frozen_after: float) -> dict[str, KindResult]:
    cam = Camera(spec, seed)
    health = CameraHealth(HealthConfig())
    results = {kind: KindResult() for kind in (*KINDS, "frozen")}
    now = 0.0
    active: set[str] = set()
    event: str = ""
    event_start = 0.0
    detected = False
    for phase, kind, make in timeline():
        if kind != event:
            if event and not detected:
                results[event].missed += 1
            if kind:
                results[kind].events += 1
            event, event_start, detected = kind, now, False
        state = health.update(measurement(make(cam)), now=now)
        counting = set(state.tampered)
        if health.new_frame_age(now=now) > frozen_after:
            counting.add("frozen")
        for started in counting - active:
            if started == event:
                if not detected:
                    results[event].delays.append(now - event_start)
                    detected = True
            else:
                results[started].false_alarms += 1
                results[started].false_alarm_phases[phase if not event else f"during {event}"] += 1
        if event in counting and not detected:
            results[event].delays.append(now - event_start)
            detected = True
        active = counting
        now += STEP
    if event and not detected:
        results[event].missed += 1
    return results


# ------------------------------------------------------------------ part 2: dusk drift alerts

# Day and night long against the transitions, as a real day is (11 h against ~30 min of rising gain).
DAY_S, DUSK_S, NIGHT_S, DAWN_S = 7200.0, 1800.0, 7200.0, 1800.0


def cycle(cam: Camera) -> Iterator[tuple[str, quality.QualityReport]]:
    """One day-night cycle: (phase, quality report) per frame."""
    for _ in range(int(DAY_S / STEP)):
        yield "day", quality.measure(cam.shoot(1.0))
    for light in ramp(1.0, 0.003, DUSK_S):
        yield "dusk", quality.measure(cam.shoot(light))
    for _ in range(int(NIGHT_S / STEP)):
        yield "night", quality.measure(cam.shoot(0.003))
    for light in ramp(0.003, 1.0, DAWN_S):
        yield "dawn", quality.measure(cam.shoot(light))


@dataclass
class DriftResult:
    ordinary_day: int = 0  # alerts started by day in the ordinary cycles
    ordinary_dusk_night: int = 0  # ... at dusk, at night or at dawn
    unusual_night: int = 0  # alerts started during the night of the dim-illuminator cycle
    unusual_firing: set[str] = field(default_factory=set)  # alerts firing at some time in that night
    unusual_delay: float | None = None  # from the start of that night to its first new alert
    onsets: list[str] = field(default_factory=list)  # "cycle phase signal/test/regime" of every alert


def watch(baseline: Baseline, cycles: list[list[tuple[str, quality.QualityReport]]]) -> DriftResult:
    """VisionInputDrift as Prometheus evaluates it, over consecutive cycles (the last one unusual)."""
    tracker = DriftTracker(window_frames=WINDOW_FRAMES, baselines={baseline.source: baseline})
    since: dict[tuple[str, str, str], float] = {}
    firing: set[tuple[str, str, str]] = set()
    result = DriftResult()
    now = 0.0
    every = int(SCRAPE / STEP)
    for index, frames in enumerate(cycles):
        unusual = index == len(cycles) - 1
        night_start: float | None = None
        for i, (phase, report) in enumerate(frames):
            tracker.observe(baseline.source, frame_signals(report), tracker.regime_of(baseline.source, report))
            if phase == "night" and night_start is None:
                night_start = now
            now += STEP
            if i % every:
                continue
            holding = set()
            for drift in tracker.drift():
                if drift.window_size < MIN_WINDOW or not alerted(drift.regime):
                    continue  # as the shipped rule: twilight is a transition, not alerted on
                for (signal, test), value in drift.scores.items():
                    if value > (PSI_ACT if test == "psi" else KS_ACT):
                        holding.add((signal, test, drift.regime))
            for key in list(since):
                if key not in holding:
                    del since[key]
                    firing.discard(key)
            for key in holding:
                since.setdefault(key, now)
                if key in firing and unusual and phase == "night":
                    result.unusual_firing.add("/".join(key))
                if key in firing or now - since[key] < ALERT_FOR:
                    continue
                firing.add(key)
                result.onsets.append(f"cycle {index} {phase} {'/'.join(key)}")
                if unusual and phase == "night":
                    result.unusual_night += 1
                    result.unusual_firing.add("/".join(key))
                    if result.unusual_delay is None and night_start is not None:
                        result.unusual_delay = now - night_start
                elif not unusual and phase == "day":
                    result.ordinary_day += 1
                elif not unusual:
                    result.ordinary_dusk_night += 1
    return result


def drift(spec: CameraSpec, seed: int) -> dict[str, DriftResult]:
    recorded = list(cycle(Camera(spec, seed)))
    watched = [list(cycle(Camera(spec, seed + 1 + k))) for k in range(2)]
    watched.append(list(cycle(Camera(spec, seed + 3, ir_light=IR_LIGHT / 5))))
    frames = [frame_signals(report) for _, report in recorded]
    # As `vision-service baseline build` makes it: the default rule, its grain level fitted to the camera.
    rule = DEFAULT_RULE.fitted(report for _, report in recorded)
    baselines = {
        "single-regime, daylight": Baseline.from_frames(
            spec.name, [f for f, (phase, _) in zip(frames, recorded, strict=True) if phase == "day"], origin="day"
        ),
        "single-regime, whole cycle": Baseline.from_frames(spec.name, frames, origin="cycle"),
        "per-regime (day, twilight, night)": Baseline.from_frames(
            spec.name, frames, origin="cycle", rule=rule, regimes=[rule.regime(report) for _, report in recorded]
        ),
    }
    return {name: watch(baseline, watched) for name, baseline in baselines.items()}


# ------------------------------------------------------------------ report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cameras", help="comma-separated camera names (default: all)")
    parser.add_argument("--part", choices=("all", "tampering", "drift"), default="all")
    parser.add_argument("--verbose", action="store_true", help="also list every drift alert")
    args = parser.parse_args(argv)
    specs = [c for c in CAMERAS if not args.cameras or c.name in args.cameras.split(",")]
    cv2.setNumThreads(1)
    started = time.time()
    frozen_after = frozen_threshold()

    kinds: dict[str, KindResult] = {kind: KindResult() for kind in (*KINDS, "frozen")}
    drifts: dict[str, DriftResult] = {}
    for offset, spec in enumerate(CAMERAS):
        if spec not in specs:
            continue
        tampered = tampering(spec, args.seed + 10 * offset, frozen_after) if args.part != "drift" else {}
        for kind, result in tampered.items():
            total = kinds[kind]
            total.events += result.events
            total.delays += result.delays
            total.missed += result.missed
            total.false_alarms += result.false_alarms
            total.false_alarm_phases.update(result.false_alarm_phases)
        for name, one in (drift(spec, args.seed + 100 + 10 * offset) if args.part != "tampering" else {}).items():
            total_drift = drifts.setdefault(name, DriftResult())
            total_drift.ordinary_day += one.ordinary_day
            total_drift.ordinary_dusk_night += one.ordinary_dusk_night
            total_drift.unusual_night += one.unusual_night
            total_drift.unusual_firing |= {f"{spec.name} {key}" for key in one.unusual_firing}
            total_drift.onsets += [f"{spec.name} {onset}" for onset in one.onsets]
            if one.unusual_delay is not None:
                previous = total_drift.unusual_delay
                total_drift.unusual_delay = max(previous or 0.0, one.unusual_delay)
        print(f"camera {spec.name} done ({time.time() - started:.0f} s)", file=sys.stderr)

    if args.json:
        print(
            json.dumps(
                {
                    "tampering": {
                        k: {
                            "events": r.events,
                            "detected": len(r.delays),
                            "delay_seconds": r.delays,
                            "false_alarms": r.false_alarms,
                            "false_alarm_phases": dict(r.false_alarm_phases),
                        }
                        for k, r in kinds.items()
                    },
                    "drift": {k: {**vars(d), "unusual_firing": sorted(d.unusual_firing)} for k, d in drifts.items()},
                },
                indent=2,
            )
        )
        return 0

    cams = ", ".join(f"{c.name} ({c.photo})" for c in specs)
    print(f"Cameras: {cams}; one frame every {STEP:g} s of simulated time.\n")
    print("| kind | events | detected | detection delay, median (max) | false alarms |")
    print("|---|---|---|---|---|")
    for kind, r in kinds.items():
        delay = f"{np.median(r.delays):.0f} s ({max(r.delays):.0f} s)" if r.delays else "-"
        where = ", ".join(f"{n} {p}" for p, n in sorted(r.false_alarm_phases.items()))
        false = f"{r.false_alarms}" + (f" ({where})" if where else "")
        print(f"| {kind} | {r.events} | {len(r.delays)} | {delay} | {false} |")
    print(
        f"\nMinimum duration {HealthConfig().min_seconds:g} s (VISION_TAMPER_MIN_SECONDS); frozen after "
        f"{frozen_after:g} s (vision:threshold:camera_frozen_seconds). False alarms counted over the whole "
        "timeline: daylight with shake and noise, dusk, infrared night, dawn, and the other kinds' events.\n"
    )
    runs = len(specs)
    print(f"VisionInputDrift alerts over {runs} cameras x (2 ordinary cycles + 1 with a dim IR illuminator):\n")
    print(
        "| baseline | ordinary cycles: alerts started by day | ... at dusk, night or dawn "
        "| unusual night: alerts firing | of which started in it | first of those after |"
    )
    print("|---|---|---|---|---|---|")
    for name, d in drifts.items():
        delay = "-" if d.unusual_delay is None else f"{d.unusual_delay / 60:.0f} min (slowest camera)"
        print(
            f"| {name} | {d.ordinary_day} | {d.ordinary_dusk_night} | {len(d.unusual_firing)} "
            f"| {d.unusual_night} | {delay} |"
        )
    if args.verbose:
        for name, d in drifts.items():
            print(f"\n{name}:", *d.onsets, sep="\n  ")
    print(
        "\nAn alert is one VisionInputDrift label set (signal, test, regime) starting to fire; "
        f"window {WINDOW_FRAMES} frames, PSI > {PSI_ACT} or KS > {KS_ACT}, for {ALERT_FOR / 60:.0f} min."
    )
    print(f"\n({time.time() - started:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
