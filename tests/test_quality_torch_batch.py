"""measure_batch on torch tensors agrees with the NumPy/OpenCV path on every available device."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data
import torch

import quality
from quality.simulate import gaussian_noise, low_light

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def assert_agree(a: quality.QualityReport, b: quality.QualityReport) -> None:
    for name in ("brightness", "contrast", "underexposed_ratio", "overexposed_ratio"):
        assert getattr(b, name) == pytest.approx(getattr(a, name), abs=1e-3), name
    for name in ("sharpness", "noise_sigma"):
        assert getattr(b, name) == pytest.approx(getattr(a, name), rel=0.02, abs=1e-3), name


@pytest.fixture(scope="module")
def photos(bus_bgr: np.ndarray, zidane_bgr: np.ndarray) -> list[np.ndarray]:
    astronaut = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
    return [
        bus_bgr,  # 810x1080: non-integer area resize
        zidane_bgr,  # 1280x720: integer factor 2
        astronaut[:301, :457],  # odd size, below analysis size
        low_light(bus_bgr, 0.05, rng=np.random.default_rng(2)),
        gaussian_noise(astronaut, 12, rng=np.random.default_rng(4)),
    ]


@pytest.mark.parametrize("device", DEVICES)
def test_each_photo_agrees_with_numpy(photos: list[np.ndarray], device: str) -> None:
    tensors = [torch.from_numpy(p).to(device) for p in photos]
    for photo, report in zip(photos, quality.measure_batch(tensors), strict=True):
        assert_agree(quality.measure(photo), report)


@pytest.mark.parametrize("device", DEVICES)
def test_channels_first_rgb_batch_as_decoders_give_it(bus_bgr: np.ndarray, device: str) -> None:
    rgb_chw = torch.from_numpy(bus_bgr[:, :, ::-1].copy()).permute(2, 0, 1).to(device)
    batch = torch.stack([rgb_chw, rgb_chw.flip(-1)])
    reports = quality.measure_batch(batch, layout="nchw", color_order="rgb")
    assert_agree(quality.measure(bus_bgr), reports[0])
    assert_agree(quality.measure(np.ascontiguousarray(bus_bgr[:, ::-1])), reports[1])


def test_gray_batch_and_empty_batch(bus_bgr: np.ndarray) -> None:
    gray = cv2.cvtColor(bus_bgr, cv2.COLOR_BGR2GRAY)
    (report,) = quality.measure_batch(torch.from_numpy(gray)[None])
    assert_agree(quality.measure(gray), report)
    assert quality.measure_batch([]) == []


def test_bad_tensors_raise_value_error() -> None:
    with pytest.raises(ValueError, match="uint8"):
        quality.measure_batch(torch.zeros(1, 8, 8, 3))
    with pytest.raises(ValueError, match="channels"):
        quality.measure_batch(torch.zeros(1, 8, 8, 2, dtype=torch.uint8))
