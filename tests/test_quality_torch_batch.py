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


def assert_agree(expected: quality.QualityReport, got: quality.QualityReport) -> None:
    for name in ("brightness", "contrast", "underexposed_ratio", "overexposed_ratio"):
        assert getattr(got, name) == pytest.approx(getattr(expected, name), abs=1e-3), name
    for name in ("sharpness", "noise_sigma"):
        assert getattr(got, name) == pytest.approx(getattr(expected, name), rel=0.02), name
    assert got.colourfulness == pytest.approx(expected.colourfulness, abs=0.05)


@pytest.fixture(scope="module")
def photos(bus_bgr: np.ndarray, zidane_bgr: np.ndarray) -> list[np.ndarray]:
    astronaut = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
    return [
        bus_bgr,  # 810x1080: area resize by a non-integer factor (1080 -> 640)
        zidane_bgr,  # 1280x720: integer factor 2
        cv2.resize(bus_bgr, (777, 1001), interpolation=cv2.INTER_CUBIC),  # odd, larger than 640
        np.ascontiguousarray(astronaut[:301, :457]),  # odd size, below analysis size
        skimage.data.camera(),  # gray
        cv2.cvtColor(zidane_bgr, cv2.COLOR_BGR2BGRA),  # BGRA
        low_light(bus_bgr, 0.05, rng=2),
        gaussian_noise(astronaut, 12, rng=4),
        np.ascontiguousarray(astronaut[:5, :7]),  # smaller than one noise block
    ]


@pytest.mark.parametrize("device", DEVICES)
def test_each_photo_agrees_with_numpy(photos: list[np.ndarray], device: str) -> None:
    """A list of images of different sizes, as a GPU decoder yields them; order is kept."""
    reports = quality.measure_batch([torch.from_numpy(p).to(device) for p in photos])
    assert len(reports) == len(photos)
    for photo, report in zip(photos, reports, strict=True):
        assert_agree(quality.measure(photo), report)


@pytest.mark.parametrize("device", DEVICES)
def test_one_batch_tensor_nhwc(bus_bgr: np.ndarray, device: str) -> None:
    frames = [bus_bgr, low_light(bus_bgr, 0.1, rng=1), bus_bgr[:, ::-1], bus_bgr[::-1]]
    batch = torch.from_numpy(np.stack(frames)).to(device)
    for frame, report in zip(frames, quality.measure_batch(batch), strict=True):
        assert_agree(quality.measure(frame), report)


@pytest.mark.parametrize("device", DEVICES)
def test_channels_first_rgb_batch_as_decoders_give_it(bus_bgr: np.ndarray, device: str) -> None:
    rgb_chw = torch.from_numpy(bus_bgr[:, :, ::-1].copy()).permute(2, 0, 1).to(device)
    batch = torch.stack([rgb_chw, rgb_chw.flip(-1)])
    reports = quality.measure_batch(batch, layout="nchw", color_order="rgb")
    assert_agree(quality.measure(bus_bgr), reports[0])
    assert_agree(quality.measure(np.ascontiguousarray(bus_bgr[:, ::-1])), reports[1])
    singles = quality.measure_batch([rgb_chw], layout="nchw", color_order="rgb")
    assert singles == reports[:1]


@pytest.mark.parametrize("device", DEVICES)
def test_tensor_results_stay_on_the_device(bus_bgr: np.ndarray, device: str) -> None:
    gray = cv2.cvtColor(bus_bgr, cv2.COLOR_BGR2GRAY)
    on_device = torch.from_numpy(gray).to(device)
    table = quality.measure_batch_tensor(torch.stack([on_device, on_device]))
    assert table.shape == (2, 7) and table.device.type == torch.device(device).type
    assert table.dtype == torch.float32
    assert_agree(quality.measure(gray), quality.QualityReport(*table[1].tolist()))


@pytest.mark.parametrize("device", DEVICES)
def test_scene_thumbnails_agree_with_numpy(photos: list[np.ndarray], device: str) -> None:
    table, thumbnails = quality.measure_batch_scene([torch.from_numpy(p).to(device) for p in photos])
    assert table.shape == (len(photos), 7) and len(thumbnails) == len(photos)
    for photo, row, thumb in zip(photos, table.cpu().tolist(), thumbnails, strict=True):
        report, expected = quality.measure_scene(photo)
        assert_agree(report, quality.QualityReport(*row))
        assert thumb.device.type == torch.device(device).type and thumb.dtype == torch.float32
        assert tuple(thumb.shape) == expected.shape
        difference = np.abs(thumb.cpu().numpy() - expected)
        # Rare rounding ties of the analysis luma (non-integer scales) move a thumbnail pixel a little.
        assert difference.max() < 0.05 and difference.mean() < 1e-3


def test_empty_input_gives_no_reports() -> None:
    assert quality.measure_batch([]) == []
    assert quality.measure_batch(torch.zeros((0, 8, 8, 3), dtype=torch.uint8)) == []


@pytest.mark.parametrize(
    ("bad", "kwargs", "message"),
    [
        (torch.zeros(1, 8, 8, 3), {}, "uint8.*float32"),
        (torch.zeros(1, 8, 8, 2, dtype=torch.uint8), {}, "channels.*2"),
        (torch.zeros(1, 3, 8, 8, dtype=torch.uint8), {}, "channels.*layout='nchw'"),  # CHW passed as NHWC
        (torch.zeros(1, 8, 8, 3, dtype=torch.uint8), {"layout": "nchw"}, "channels"),
        (torch.zeros(1, 1, 8, 8, 3, dtype=torch.uint8), {}, "shape"),
        (torch.zeros(8, dtype=torch.uint8), {}, "shape"),
        (torch.zeros(2, 0, 8, 3, dtype=torch.uint8), {}, "non-empty"),
        ([torch.zeros(8, 8, 3, dtype=torch.uint8), np.zeros((8, 8, 3), np.uint8)], {}, "item 1"),
        ([torch.zeros(8, 8, 3, dtype=torch.uint8)], {"color_order": "hsv"}, "color_order"),
        ([torch.zeros(8, 8, 3, dtype=torch.uint8)], {"analysis_size": 0}, "analysis_size"),
    ],
)
def test_bad_tensors_raise_value_error(bad: object, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        quality.measure_batch(bad, **kwargs)  # type: ignore[arg-type]
