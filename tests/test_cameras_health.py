"""Camera health on real photographs: each kind of tampering and a frozen picture, each with its look-alike.

A camera is simulated watching a real scene (``quality.simulate.camera_view``) one frame a second
with fresh sensor noise in every frame; tampering is simulated honestly (``quality.simulate``: a
covered lens, haze or paint, a Gaussian defocus, the camera turned), and so are the look-alikes
that must not alarm: a genuinely dark night, the camera's infrared night mode, dusk, a shaking
camera, a still scene. Time is simulated (``update(now=...)``): no test waits.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

import quality
from quality.simulate import blur, camera_view, covered, gaussian_noise, haze, infrared, low_light
from tests.infra import wait_for
from tests.streams import RtspServer, parse_samples, photographs, sample, write_frames
from vision_service.api.main import create_app
from vision_service.cameras.health import (
    COVERED,
    DEFOCUSED,
    KINDS,
    MOVED,
    OBSCURED,
    CameraHealth,
    HealthConfig,
    HealthState,
)
from vision_service.core.config import Settings
from vision_service.measurement import Measurement, StageTimes

MIN_SECONDS = 20.0
REFERENCE_FRAMES = 10
Make = Callable[[np.random.Generator], np.ndarray]


def measurement(bgr: np.ndarray) -> Measurement:
    report, thumb = quality.measure_scene(bgr)
    return Measurement("gate", bgr.shape[1], bgr.shape[0], report, [], StageTimes(), "cpu", scene=thumb)


class Camera:
    """One camera's health, fed one frame a second of simulated time."""

    def __init__(self, scene: np.ndarray, *, seed: int = 0) -> None:
        self.scene = scene
        self.rng = np.random.default_rng(seed)
        self.health = CameraHealth(HealthConfig(min_seconds=MIN_SECONDS, reference_frames=REFERENCE_FRAMES))
        self.now = 0.0

    def view(self, **kwargs: object) -> np.ndarray:
        return camera_view(self.scene, (640, 360), scale=0.7, **kwargs)  # type: ignore[arg-type]

    def day(self, rng: np.random.Generator) -> np.ndarray:
        return gaussian_noise(self.view(), 1.5, rng=rng)

    def feed(self, make: Make, seconds: int) -> list[HealthState]:
        states = []
        for _ in range(seconds):
            states.append(self.health.update(measurement(make(self.rng)), now=self.now))
            self.now += 1.0
        return states

    def learn(self) -> None:
        self.feed(self.day, REFERENCE_FRAMES)


@pytest.fixture
def camera(zidane_bgr: np.ndarray) -> Camera:
    cam = Camera(zidane_bgr)
    cam.learn()
    return cam


def first_alarm(states: Iterable[HealthState], kind: str) -> int | None:
    """Index (seconds after the change) of the first state where ``kind`` counts."""
    return next((i for i, s in enumerate(states) if kind in s.tampered), None)


def never(states: list[HealthState]) -> bool:
    return all(not s.tampered for s in states)


def test_the_reference_is_learned_from_the_first_frames_then_day_frames_raise_nothing(camera: Camera) -> None:
    view = camera.health.view()
    # zidane.jpg's mean level (0.23) makes its daylight the "twilight" regime: one reference, learned.
    assert view["references"] == {"twilight": REFERENCE_FRAMES} and view["learning"] == {}
    states = camera.feed(camera.day, 60)
    assert never(states)
    assert set(states[-1].scores) == set(KINDS)
    assert states[-1].scores[MOVED] > 0.9


def test_a_covered_lens_alarms_after_the_minimum_duration_and_a_dark_night_does_not(camera: Camera) -> None:
    dark_night = camera.feed(lambda rng: low_light(camera.view(), 0.003, gain=4.0, rng=rng), 120)
    assert never(dark_night), [s.scores for s in dark_night[:3]]
    ir_night = camera.feed(lambda rng: infrared(camera.view(), 0.005, rng=rng), 120)
    assert never(ir_night)
    lens = camera.feed(lambda rng: covered(camera.view(), light=0.03, rng=rng), 60)
    delay = first_alarm(lens, COVERED)
    assert delay is not None and MIN_SECONDS <= delay <= MIN_SECONDS + 1
    assert {k for s in lens for k in s.tampered} == {COVERED}  # not also "moved" or "obscured"


def test_a_turned_camera_alarms_and_a_shaking_one_does_not(camera: Camera) -> None:
    shaking = camera.feed(
        lambda rng: gaussian_noise(camera.view(centre=tuple(0.5 + rng.uniform(-0.01, 0.01, 2))), 1.5, rng=rng), 90
    )
    assert never(shaking)
    turned = camera.feed(lambda rng: gaussian_noise(camera.view(centre=(0.42, 0.55), roll=8), 1.5, rng=rng), 60)
    delay = first_alarm(turned, MOVED)
    assert delay is not None and MIN_SECONDS <= delay <= MIN_SECONDS + 1
    assert COVERED not in turned[-1].tampered


def test_a_defocused_lens_alarms_from_a_blur_of_two_pixels_and_dusk_does_not(camera: Camera) -> None:
    dusk = camera.feed(lambda rng: low_light(camera.view(), 0.1, rng=rng), 40) + camera.feed(
        lambda rng: low_light(camera.view(), 0.03, rng=rng), 40
    )
    assert never(dusk)
    assert never(camera.feed(camera.day, 30))
    found = {}
    for sigma in (0.5, 1.0, 2.0, 4.0):
        states = camera.feed(lambda rng, s=sigma: gaussian_noise(blur(camera.view(), s), 1.5, rng=rng), 30)
        found[sigma] = DEFOCUSED in states[-1].tampered
        assert not states[-1].tampered - {DEFOCUSED}
    assert found == {0.5: False, 1.0: False, 2.0: True, 4.0: True}


def test_haze_or_paint_on_the_lens_alarms_as_obscured_and_a_low_contrast_dusk_does_not(camera: Camera) -> None:
    assert never(camera.feed(lambda rng: low_light(camera.view(), 0.02, rng=rng), 60))
    assert never(camera.feed(camera.day, 30))
    paint = camera.feed(lambda rng: gaussian_noise(haze(camera.view(), 0.4), 1.5, rng=rng), 60)
    delay = first_alarm(paint, OBSCURED)
    assert delay is not None and MIN_SECONDS <= delay <= MIN_SECONDS + 1
    assert paint[-1].tampered == {OBSCURED}


def test_a_short_event_never_counts_and_an_alarm_clears_once_the_scene_is_back(camera: Camera) -> None:
    hand = lambda rng: covered(camera.view(), light=0.03, rng=rng)  # noqa: E731
    assert never(camera.feed(hand, int(MIN_SECONDS) - 2))  # someone brushes past the lens
    assert never(camera.feed(camera.day, 5))
    camera.feed(hand, int(MIN_SECONDS) + 5)
    back = camera.feed(camera.day, 40)
    assert COVERED in back[0].tampered  # still counted right after ...
    cleared = next(i for i, s in enumerate(back) if not s.tampered)
    assert MIN_SECONDS <= cleared <= MIN_SECONDS + 1  # ... until it has been gone as long


def test_after_a_ptz_move_a_reset_learns_the_new_view(camera: Camera) -> None:
    moved = lambda rng: gaussian_noise(camera.view(centre=(0.6, 0.5)), 1.5, rng=rng)  # noqa: E731
    assert MOVED in camera.feed(moved, 30)[-1].tampered
    assert camera.health.reset().tampered == frozenset()
    assert camera.health.view()["references"] == {}
    states = camera.feed(moved, REFERENCE_FRAMES + 40)
    assert never(states)


def test_night_gets_its_own_reference_but_a_covered_or_painted_lens_is_not_learned(camera: Camera) -> None:
    lens = camera.feed(lambda rng: covered(camera.view(), light=0.03, rng=rng), REFERENCE_FRAMES + 30)
    assert lens[-1].regime == "night" and lens[-1].tampered == {COVERED}  # dark like a night, but covered
    assert camera.health.view()["references"] == {"twilight": REFERENCE_FRAMES}
    camera.feed(camera.day, 30)
    paint = camera.feed(lambda rng: gaussian_noise(haze(camera.view(), 0.4), 1.5, rng=rng), REFERENCE_FRAMES + 30)
    assert paint[-1].regime == "day" and paint[-1].tampered == {OBSCURED}  # bright like a day, but painted
    camera.feed(camera.day, 30)
    camera.feed(lambda rng: infrared(camera.view(), 0.02, rng=rng), REFERENCE_FRAMES + 5)
    assert camera.health.view()["references"] == {"twilight": REFERENCE_FRAMES, "night": REFERENCE_FRAMES}
    assert camera.health.state().regime == "night"


# ------------------------------------------------------------------ frozen pictures


def test_a_resent_identical_buffer_is_frozen_and_a_still_scene_with_sensor_noise_is_not(camera: Camera) -> None:
    def live(rng: np.random.Generator) -> np.ndarray:  # the same view, fresh sensor noise (3 levels) in every frame
        return gaussian_noise(camera.view(), 3.0, rng=rng)

    still = camera.feed(live, 30)
    assert camera.health.new_frame_age(now=camera.now - 1) == 0.0
    assert never(still)
    buffer = live(camera.rng)
    camera.feed(lambda rng: buffer, 45)  # the stream keeps sending that one frame
    assert camera.health.new_frame_age(now=camera.now - 1) == 44.0
    camera.feed(live, 1)
    assert camera.health.new_frame_age(now=camera.now - 1) == 0.0


@pytest.mark.parametrize("sigma", [2.0, 4.0, 8.0])
def test_noise_of_any_level_keeps_a_still_scene_live(zidane_bgr: np.ndarray, sigma: float) -> None:
    cam = Camera(zidane_bgr, seed=int(sigma * 10))
    cam.feed(lambda rng: gaussian_noise(cam.view(), sigma, rng=rng), 20)
    assert cam.health.new_frame_age(now=cam.now - 1) == 0.0


def test_a_frozen_picture_with_a_ticking_clock_is_still_frozen(camera: Camera) -> None:
    buffer = camera.day(camera.rng)
    ticks = iter(range(10**6))

    def with_clock(rng: np.random.Generator) -> np.ndarray:
        frame = buffer.copy()
        tick = next(ticks)
        frame[8:24, 8 : 8 + 6 * (1 + tick % 10)] = 255  # an on-screen display that changes every second
        return frame

    camera.feed(with_clock, 30)
    assert camera.health.new_frame_age(now=camera.now - 1) >= 29.0


def test_no_frame_no_age() -> None:
    assert math.isnan(CameraHealth().new_frame_age())
    assert CameraHealth().view()["new_frame_age_seconds"] is None


# ------------------------------------------------------------------ through the service, from real RTSP streams


@pytest.fixture(scope="module")
def health_api(model_path: str) -> Iterator[TestClient]:
    settings = Settings(
        model=model_path,
        device="cpu",
        cameras_api="on",  # no API key in this test: the operator allows camera changes explicitly
        max_cameras=4,
        camera_timeout_seconds=3.0,
        tamper_min_seconds=2.0,
        tamper_reference_frames=3,
    )
    app = create_app(settings, load_model=False)
    app.state.service.load_model()
    with TestClient(app) as client:
        yield client


def health_of(api: TestClient, camera_id: str) -> dict[str, Any]:
    response = api.get(f"/v1/cameras/{camera_id}")
    assert response.status_code == 200, response.text
    health: dict[str, Any] = response.json()["health"]
    return health


def test_a_frozen_rtsp_stream_ages_while_a_still_noisy_one_keeps_renewing(
    health_api: TestClient, tmp_path: Path
) -> None:
    """GStreamer serves two streams of the same still street: one re-sends a single decoded buffer
    (``imagefreeze``), the other is a live camera whose sensor adds fresh noise to every frame."""
    rng = np.random.default_rng(3)
    street = photographs()[0]
    noisy = write_frames(tmp_path / "still", [gaussian_noise(street, 3.0, rng=rng) for _ in range(20)])
    with (
        RtspServer(noisy, tmp_path / "still.log", fps=5) as still,
        RtspServer(noisy, tmp_path / "frozen.log", fps=5, freeze=True) as frozen,
    ):
        for camera_id, server in (("still", still), ("frozen", frozen)):
            response = health_api.post("/v1/cameras", json={"id": camera_id, "url": server.url(), "fps": 2})
            assert response.status_code == 201, response.text
        try:
            aged = wait_for(
                lambda: (age := health_of(health_api, "frozen")["new_frame_age_seconds"]) is not None and age > 15,
                timeout=120,
                what="the frozen camera's picture to stay unchanged for 15 s",
            )
            assert aged
            frozen_view = health_api.get("/v1/cameras/frozen").json()
            assert frozen_view["up"] and frozen_view["frames"]["processed"] >= 5  # frames keep arriving
            still_age = health_of(health_api, "still")["new_frame_age_seconds"]
            assert still_age is not None and still_age < 7.5
            samples = parse_samples(health_api.get("/metrics").text)
            assert sample(samples, "vision_camera_new_frame_age_seconds", camera="frozen") > 15  # type: ignore[operator]
            assert sample(samples, "vision_camera_new_frame_age_seconds", camera="still") < 7.5  # type: ignore[operator]
            for kind in KINDS:  # neither is tampered with: each learned its own (still) scene
                assert sample(samples, "vision_camera_tampered", camera="frozen", kind=kind) == 0
                assert sample(samples, "vision_camera_tampered", camera="still", kind=kind) == 0

            # Resetting the reference: with its stream gone, the camera cannot learn one again (it
            # needs tamper_reference_frames = 3 new frames, and at most the one frame already taken
            # can still be processed), so what the reset forgot stays forgotten while we look.
            assert health_of(health_api, "still")["references"]  # learned from the still scene
            still.stop()
            wait_for(
                lambda: not health_api.get("/v1/cameras/still").json()["up"], timeout=30, what="the stream to drop"
            )
            assert health_of(health_api, "still")["references"]  # a dropped stream keeps the reference
            assert health_api.delete("/v1/cameras/still/reference").status_code == 204
            assert health_of(health_api, "still")["references"] == {}
            assert health_api.delete("/v1/cameras/nope/reference").status_code == 404
        finally:
            for camera_id in ("still", "frozen"):
                health_api.delete(f"/v1/cameras/{camera_id}")
    text = health_api.get("/metrics").text
    for name in ("vision_camera_new_frame_age_seconds", "vision_camera_tampered", "vision_camera_tamper_score"):
        assert f'{name}{{camera="frozen"' not in text and f'{name}{{camera="still"' not in text
