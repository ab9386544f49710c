"""Demo load: a day-night-day sequence of real photographs, posted to a running service.

``vision-service demo`` feeds photographs (Ultralytics' bus.jpg and zidane.jpg, plus scikit-image's
astronaut, coffee, chelsea and rocket when scikit-image is installed) into ``/v1/detect`` from
several sources, so the dashboards tell the low-light story within minutes:

* the light follows a cosine from full daylight down to a few percent (night) and back, once per
  ``cycle`` (default 10 minutes); every frame is re-shot with :func:`quality.simulate.low_light`
  (photon shot noise, read noise and auto-exposure gain, so night frames are darker *and* noisier);
* each source is a different camera: the first only darkens, the second adds strong sensor noise
  at night (a cheap camera at high gain), the third also goes out of focus (fog / dew on the lens);
  further sources repeat the three with a phase shift;
* one image in ``bad_every`` is a truncated JPEG, which the service rejects (``corrupt_image``), so
  the rejected-inputs panel is not empty.

The sources must be configured in the service (``VISION_SOURCES=street,parking,entrance``);
otherwise it answers ``unknown_source`` and the demo stops with that hint. Standard library HTTP only.
"""

from __future__ import annotations

import json
import logging
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from quality.simulate import blur, gaussian_noise, low_light

log = logging.getLogger(__name__)

DEFAULT_SOURCES = ("street", "parking", "entrance")
MAX_SIDE = 640  # the service analyses at 640 px; smaller uploads keep the demo cheap


class DemoError(RuntimeError):
    """The demo cannot go on (service unreachable, not ready, or the sources are not configured)."""


@dataclass(frozen=True)
class NightProfile:
    """How one demo source's camera degrades at night."""

    night_light: float  # fraction of daylight exposure at the darkest point of the cycle
    night_noise_sigma: float  # extra Gaussian noise (grey levels) at full night
    night_blur_sigma: float  # Gaussian blur (pixels) at full night
    phase: float  # shift of this source's cycle, as a fraction of the cycle


# Auto-exposure gain hides most of the lost light (brightness falls roughly as light ** 0.23), so
# "night" is a few thousandths of daylight: mean brightness ~0.1, the dark band, with shot noise.
NIGHT_PROFILES = (
    NightProfile(night_light=0.003, night_noise_sigma=0.0, night_blur_sigma=0.0, phase=0.0),
    NightProfile(night_light=0.002, night_noise_sigma=12.0, night_blur_sigma=0.0, phase=0.03),
    NightProfile(night_light=0.004, night_noise_sigma=0.0, night_blur_sigma=3.5, phase=0.06),
)


@dataclass
class DemoConfig:
    url: str = "http://127.0.0.1:8000"
    sources: Sequence[str] = DEFAULT_SOURCES
    cycle_seconds: float = 600.0
    rate: float = 2.0  # images per second over all sources; 0 = as fast as the service answers
    count: int = 0  # stop after this many images (0 = no limit)
    duration: float = 0.0  # stop after this many seconds (0 = no limit)
    bad_every: int = 40  # one truncated JPEG every N images (0 = never)
    api_key: str | None = None
    ready_timeout: float = 300.0
    seed: int = 0


@dataclass
class DemoStats:
    sent: int = 0
    processed: int = 0
    rejected: int = 0
    detections: int = 0
    by_source: Counter[str] = field(default_factory=Counter)
    rejected_by_reason: Counter[str] = field(default_factory=Counter)


def daylight(fraction: float) -> float:
    """1 at the start and end of a cycle (day), 0 in the middle (night), cosine in between."""
    return 0.5 + 0.5 * math.cos(2.0 * math.pi * fraction)


def load_photos(max_side: int = MAX_SIDE) -> list[tuple[str, np.ndarray]]:
    """Real photographs as BGR uint8, longer side at most ``max_side``."""
    from ultralytics.utils import ASSETS

    photos: list[tuple[str, np.ndarray]] = []
    for name in ("bus.jpg", "zidane.jpg"):
        image = cv2.imread(str(ASSETS / name), cv2.IMREAD_COLOR)
        if image is not None:
            photos.append((name.removesuffix(".jpg"), image))
    try:
        from skimage import data
    except ImportError:
        log.info("scikit-image not installed: the demo uses Ultralytics' two sample photos only")
    else:
        for name in ("astronaut", "coffee", "chelsea", "rocket"):
            rgb = getattr(data, name)()
            photos.append((name, cv2.cvtColor(np.ascontiguousarray(rgb[..., :3]), cv2.COLOR_RGB2BGR)))
    if not photos:
        raise DemoError("no demo photographs found (ultralytics assets missing)")
    return [(name, _fit(image, max_side)) for name, image in photos]


def _fit(image: np.ndarray, max_side: int) -> np.ndarray:
    scale = max_side / max(image.shape[:2])
    if scale >= 1:
        return image
    size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def render(
    photo: np.ndarray, profile: NightProfile, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, float]:
    """``photo`` as a camera with ``profile`` would shoot it at ``fraction`` of the cycle; returns (frame, light)."""
    night = 1.0 - daylight((fraction + profile.phase) % 1.0)
    light = 1.0 - (1.0 - profile.night_light) * night
    frame = low_light(photo, light, rng=rng) if light < 0.999 else photo.copy()
    if profile.night_noise_sigma and night > 0.05:
        frame = gaussian_noise(frame, profile.night_noise_sigma * night, rng=rng)
    if profile.night_blur_sigma and night > 0.05:
        frame = blur(frame, profile.night_blur_sigma * night)
    return frame, light


def encode_jpeg(frame: np.ndarray, quality: int = 90) -> bytes:
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise DemoError("JPEG encoding failed")
    return bytes(buf.tobytes())


class Client:
    """Posts images to ``/v1/detect`` (standard library HTTP)."""

    def __init__(self, url: str, api_key: str | None = None, timeout: float = 60.0) -> None:
        self.base = url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout

    def wait_ready(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while True:
            try:
                with urllib.request.urlopen(f"{self.base}/readyz", timeout=5) as response:
                    body: dict[str, Any] = json.loads(response.read())
                    return body
            except urllib.error.HTTPError as exc:  # 503 while the model loads
                last = f"HTTP {exc.code}: {exc.read()[:200].decode(errors='replace')}"
            except (OSError, ValueError) as exc:
                last = str(exc)
            if time.monotonic() >= deadline:
                raise DemoError(f"{self.base} did not become ready within {timeout:.0f} s ({last})")
            time.sleep(2.0)

    def detect(self, data: bytes, source: str) -> tuple[int, dict[str, Any]]:
        headers = {"content-type": "image/jpeg"}
        if self.api_key:
            headers["x-api-key"] = self.api_key
        query = urllib.parse.urlencode({"source": source})
        request = urllib.request.Request(f"{self.base}/v1/detect?{query}", data=data, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return int(response.status), json.loads(response.read())
        except urllib.error.HTTPError as exc:
            try:
                body = json.loads(exc.read())
            except ValueError:
                body = {"error": f"http_{exc.code}"}
            return int(exc.code), body


def run(config: DemoConfig, *, report: Callable[[str], None] = print) -> DemoStats:
    """Post the day-night-day sequence until ``count`` images or ``duration`` seconds (or forever)."""
    if not config.sources:
        raise DemoError("no sources given")
    client = Client(config.url, config.api_key)
    ready = client.wait_ready(config.ready_timeout)
    report(f"service ready: model {ready.get('model')} on {ready.get('device')}")
    photos = load_photos()
    rng = np.random.default_rng(config.seed)
    stats = DemoStats()
    started = time.monotonic()
    interval = 1.0 / config.rate if config.rate > 0 else 0.0
    report(
        f"demo: {len(photos)} photos, sources {', '.join(config.sources)}, "
        f"one day-night-day cycle every {config.cycle_seconds / 60:.1f} min"
    )
    while True:
        elapsed = time.monotonic() - started
        if (config.count and stats.sent >= config.count) or (config.duration and elapsed >= config.duration):
            return stats
        index = stats.sent
        source = config.sources[index % len(config.sources)]
        profile = NIGHT_PROFILES[(index % len(config.sources)) % len(NIGHT_PROFILES)]
        name, photo = photos[(index // len(config.sources)) % len(photos)]
        fraction = (elapsed / config.cycle_seconds) % 1.0 if config.cycle_seconds > 0 else 0.0
        frame, light = render(photo, profile, fraction, rng)
        data = encode_jpeg(frame)
        if config.bad_every and index % config.bad_every == config.bad_every - 1:
            data = data[: len(data) // 3]  # a truncated upload: rejected as corrupt_image
        status, body = client.detect(data, source)
        stats.sent += 1
        stats.by_source[source] += 1
        if status == 200:
            stats.processed += 1
            stats.detections += int(body.get("count", 0))
        elif body.get("error") == "unknown_source":
            raise DemoError(
                f"the service does not know source {source!r}: start it with "
                f"VISION_SOURCES={','.join(config.sources)} (compose/vision.env)"
            )
        elif body.get("error") == "unauthorized":
            raise DemoError("the service requires an API key: pass --api-key or set VISION_API_KEY")
        elif status == 503:
            stats.rejected += 1
            stats.rejected_by_reason[str(body.get("error"))] += 1
            time.sleep(1.0)  # overloaded or reloading: back off
        else:
            stats.rejected += 1
            stats.rejected_by_reason[str(body.get("error"))] += 1
        if stats.sent % 50 == 0:
            phase = "day" if light > 0.5 else "dusk/dawn" if light > 0.1 else "night"
            report(
                f"{stats.sent} images ({phase}, light {light:.2f} on {source}, photo {name}): "
                f"{stats.processed} processed, {stats.rejected} rejected, {stats.detections} detections"
            )
        if interval:
            time.sleep(max(0.0, started + stats.sent * interval - time.monotonic()))
