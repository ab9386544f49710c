"""`vision-service demo`: a day-night-day sequence of real photos, posted to a running service."""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import quality
from tests.infra import vision_service
from vision_service.cli import main
from vision_service.clients.demo import NIGHT_PROFILES, DemoConfig, DemoError, load_photos, render, run

SOURCES = "street,parking,entrance"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, model_path: str) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("demo")
    with vision_service(tmp, model=model_path, env={"VISION_SOURCES": SOURCES, "VISION_IMAGE_SIZE": "320"}) as base:
        yield base


def images_total(base: str) -> dict[tuple[str, str, str], float]:
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
        text = response.read().decode()
    pattern = r'vision_images_total\{outcome="(\w+)",reason="(\w+)",source="([\w-]+)"\} (\S+)'
    return {(m[2], m[0], m[1]): float(m[3]) for m in re.findall(pattern, text)}


def test_demo_command_posts_every_source_and_a_corrupt_upload(service: str) -> None:
    before = images_total(service)
    argv = ["demo", "--url", service, "--sources", SOURCES, "--count", "7", "--rate", "0", "--bad-every", "7"]
    assert main(argv) == 0
    after = images_total(service)

    def added(source: str, outcome: str = "processed", reason: str = "none") -> float:
        key = (source, outcome, reason)
        return after.get(key, 0.0) - before.get(key, 0.0)

    # Images go round the sources; the 7th (street's third) is a truncated JPEG.
    assert [added(s) for s in SOURCES.split(",")] == [2, 2, 2]
    assert added("street", "rejected", "corrupt_image") == 1


def test_demo_stops_with_a_hint_when_a_source_is_not_configured(service: str) -> None:
    config = DemoConfig(url=service, sources=["street", "garden"], count=4, rate=0, bad_every=0)
    with pytest.raises(DemoError, match="VISION_SOURCES=street,garden"):
        run(config, report=lambda line: None)


def test_night_frames_are_darker_noisier_and_blurrier_than_day_frames() -> None:
    (_, photo), *_ = load_photos()
    rng = np.random.default_rng(0)
    plain, noisy, foggy = NIGHT_PROFILES
    day = quality.measure(render(photo, plain, 0.0, rng)[0])
    night = quality.measure(render(photo, plain, 0.5, rng)[0])
    assert night.brightness < 0.15 < 0.3 < day.brightness
    # Each camera's darkest moment is half a cycle after its own phase.
    noisy_night = quality.measure(render(photo, noisy, 0.5 - noisy.phase, rng)[0])
    assert noisy_night.noise_sigma > 8.0 > day.noise_sigma  # above the VisionHighNoise threshold
    foggy_night = quality.measure(render(photo, foggy, 0.5 - foggy.phase, rng)[0])
    assert foggy_night.sharpness < night.sharpness
    (_, light_day), (_, light_night) = render(photo, plain, 0.0, rng), render(photo, plain, 0.5, rng)
    assert light_day == pytest.approx(1.0) and light_night == pytest.approx(plain.night_light)


def test_demo_uses_real_photographs() -> None:
    names = [name for name, _ in load_photos()]
    assert {"bus", "zidane", "astronaut", "coffee"} <= set(names)


def test_compose_demo_sources_match_the_cli_default() -> None:
    compose = (Path(__file__).resolve().parents[1] / "compose" / "docker-compose.yml").read_text()
    assert SOURCES in compose
