"""Regimes: which of a camera's usual conditions a frame belongs to, so "normal" can depend on it.

A camera that films around the clock has several normal looks: colour by day; at dusk, colour
frames that darken once auto exposure runs out of gain; at night either a monochrome infrared
picture (the camera's own day/night switch takes the IR-cut filter out and sends grey frames) or
a dark, noisy colour one. Comparing dusk and night with the day is what makes a drift alarm fire
at every dusk. A :class:`RegimeRule` sorts each frame into a regime from its own quality report,
and optionally the hour of the day:

* ``night`` when the frame is monochrome, colourfulness below ``monochrome_colourfulness`` = 4
  (:mod:`quality.colour`: exactly 0 for R = G = B; up to ~0.5 after JPEG; ~1.3-1.7 after an MPEG-4
  recording through OpenCV, whose colour conversions leave a slight constant tint; while colour
  photographs read 15-110 by day and still 10-45 at dusk), or when its brightness is below
  ``night_brightness`` = 0.15 (a colour camera without IR, after dark; the service's ``dark``
  band). A scene that is grey by day (concrete, snow) may read 4-10: lower the threshold for it;
* ``twilight`` when it is a colour frame darker than ``day_brightness`` = 0.30 (the ``dim``
  band) or grainier than ``day_noise`` (``noise_sigma``; 4 grey levels by default, clean
  daylight reading 1-3 at the 640 px analysis size; ``vision-service baseline build`` fits it to
  1.5 times the camera's own daylight grain, :meth:`RegimeRule.fitted`): dusk and dawn, when auto
  exposure first raises the sensor gain (the picture keeps its level but turns grainy) and then
  runs out of it (the picture darkens); a dark overcast day;
* ``day`` otherwise.

Each regime is compared with the same regime of the baseline, so only what is unusual *for that
light* drifts: a night darker or noisier than the usual nights, a dusk unlike the usual dusks.
The price: a change that moves frames from one regime into another (a camera whose exposure
fails and sends dim frames by day) is judged against the other regime's normal; the absolute
alerts (``VisionLowBrightness``, ``VisionBrightnessDrop``) still see it, and hour buckets do too.
``day_brightness = 0`` and ``day_noise = None`` merge twilight into day. For a scene whose
daylight brightness is itself below 0.30, lower ``day_brightness`` to ~0.7 of it.

With ``hours`` (bucket start hours, e.g. ``(6, 18)``), the regime also names the bucket of the
frame's local hour: ``day-h06`` for a day frame between 06:00 and 17:59, ``night-h18`` for a night
frame from 18:00 to 05:59, and so on: at most ``3 x len(hours)`` names, a bounded label.

``all`` (:data:`ALL`) is the one regime of a source without a rule: baselines written before
regimes existed, or built with ``--single-regime``.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from quality import QualityReport

ALL = "all"
DAY = "day"
TWILIGHT = "twilight"
NIGHT = "night"
#: The light regimes, brightest first.
LIGHTS: tuple[str, ...] = (DAY, TWILIGHT, NIGHT)

#: Frames with colourfulness below this are the camera's monochrome (IR) night mode.
MONOCHROME_COLOURFULNESS = 4.0
#: Frames darker than this (mean luma / 255) are night, colour or not: the service's `dark` band.
NIGHT_BRIGHTNESS = 0.15
#: Colour frames darker than this are twilight: the service's `dim` band.
DAY_BRIGHTNESS = 0.30
#: Colour frames grainier than this (noise_sigma, grey levels) are twilight: the camera raised its gain.
DAY_NOISE = 4.0
#: A rule fitted to a camera's frames puts twilight at this many times its daylight grain ...
NOISE_FACTOR = 1.5
#: ... but never below this (grey levels): clean daylight reads 1-3.
MIN_DAY_NOISE = 2.0


@dataclass(frozen=True)
class RegimeRule:
    """Sorts frames into ``day`` / ``twilight`` / ``night`` (and optional hour buckets); see the module docstring."""

    monochrome_colourfulness: float = MONOCHROME_COLOURFULNESS
    night_brightness: float = NIGHT_BRIGHTNESS
    day_brightness: float = DAY_BRIGHTNESS
    day_noise: float | None = DAY_NOISE
    hours: tuple[int, ...] = field(default=())

    def __post_init__(self) -> None:
        hours = tuple(int(h) for h in self.hours)
        if any(not 0 <= h <= 23 for h in hours) or list(hours) != sorted(set(hours)):
            raise ValueError(f"hours must be distinct, ascending hours 0-23, got {self.hours!r}")
        levels_ok = 0 <= self.night_brightness <= 1 and 0 <= self.day_brightness <= 1
        levels_ok = levels_ok and (self.day_noise is None or self.day_noise >= 0)
        if self.monochrome_colourfulness < 0 or not levels_ok:
            raise ValueError(
                "need monochrome_colourfulness >= 0, night_brightness and day_brightness in [0, 1] and "
                f"day_noise >= 0 or None, got {self.monochrome_colourfulness}, {self.night_brightness}, "
                f"{self.day_brightness}, {self.day_noise}"
            )
        object.__setattr__(self, "hours", hours)

    def light(self, report: QualityReport) -> str:
        """``day``, ``twilight`` or ``night`` for one frame's quality report."""
        if report.colourfulness < self.monochrome_colourfulness or report.brightness < self.night_brightness:
            return NIGHT
        grainy = self.day_noise is not None and report.noise_sigma > self.day_noise
        if report.brightness < self.day_brightness or grainy:
            return TWILIGHT
        return DAY

    def regime(self, report: QualityReport, hour: int | None = None) -> str:
        """The frame's regime; ``hour`` (0-23, local) is needed only when the rule has hour buckets."""
        light = self.light(report)
        if not self.hours:
            return light
        if hour is None:
            raise ValueError("this rule has hour buckets: the frame's hour is needed")
        return f"{light}-h{self.bucket(hour):02d}"

    def bucket(self, hour: int) -> int:
        """The start hour of the bucket ``hour`` falls in (the last bucket wraps over midnight)."""
        starts = [h for h in self.hours if h <= hour]
        return starts[-1] if starts else self.hours[-1]

    def fitted(self, reports: Iterable[QualityReport]) -> RegimeRule:
        """This rule with ``day_noise`` set from a camera's own frames: :data:`NOISE_FACTOR` times the
        median ``noise_sigma`` of its colour frames bright enough for day (at least
        :data:`MIN_DAY_NOISE`), so that twilight starts when that camera's grain grows by half, however
        clean or textured its daylight is. Unchanged when there is no such frame."""
        noise = [
            r.noise_sigma
            for r in reports
            if r.colourfulness >= self.monochrome_colourfulness and r.brightness >= self.day_brightness
        ]
        if not noise:
            return self
        return replace(self, day_noise=round(max(MIN_DAY_NOISE, NOISE_FACTOR * statistics.median(noise)), 3))

    def names(self) -> tuple[str, ...]:
        """Every regime this rule can give (a bounded set)."""
        twilight = self.day_brightness > self.night_brightness or self.day_noise is not None
        lights = LIGHTS if twilight else (DAY, NIGHT)
        if not self.hours:
            return lights
        return tuple(f"{light}-h{h:02d}" for light in lights for h in self.hours)

    def to_json(self) -> dict[str, Any]:
        return {
            "monochrome_colourfulness": self.monochrome_colourfulness,
            "night_brightness": self.night_brightness,
            "day_brightness": self.day_brightness,
            "day_noise": self.day_noise,
            "hours": list(self.hours),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RegimeRule:
        """Read :meth:`to_json` back; raise ValueError naming what is wrong."""
        unknown = set(data) - {"monochrome_colourfulness", "night_brightness", "day_brightness", "day_noise", "hours"}
        if unknown:
            raise ValueError(f"unknown regime rule keys: {', '.join(sorted(unknown))}")
        hours = data.get("hours", [])
        day_noise = data.get("day_noise", DAY_NOISE)
        if not isinstance(hours, Sequence) or isinstance(hours, str):
            raise ValueError(f"hours must be a list of hours, got {hours!r}")
        try:
            return cls(
                monochrome_colourfulness=float(data.get("monochrome_colourfulness", MONOCHROME_COLOURFULNESS)),
                night_brightness=float(data.get("night_brightness", NIGHT_BRIGHTNESS)),
                day_brightness=float(data.get("day_brightness", DAY_BRIGHTNESS)),
                day_noise=None if day_noise is None else float(day_noise),
                hours=tuple(int(h) for h in hours),
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(f"invalid regime rule: {exc}") from None


#: The rule used when a source learns its baseline (and by camera health): day, twilight, night, no hours.
DEFAULT_RULE = RegimeRule()


def alerted(regime: str) -> bool:
    """Whether drift in ``regime`` is alerted on (``VisionInputDrift``, the ``drift`` condition):
    every regime but twilight (``twilight``, ``twilight-h06``, ...), a transition that is shown only."""
    return not regime.startswith(TWILIGHT)


def parse_hours(text: str) -> tuple[int, ...]:
    """``"6,18"`` -> ``(6, 18)``; raise ValueError for anything else."""
    try:
        hours = tuple(sorted({int(part) for part in text.split(",") if part.strip()}))
    except ValueError:
        raise ValueError(f"hours must be comma-separated integers 0-23, got {text!r}") from None
    RegimeRule(hours=hours)  # validates
    return hours
