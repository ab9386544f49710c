"""The device engine gives Ultralytics' detections and quality.measure's signals, computed on a torch device.

They run on the CPU by default. On a GPU machine ``VISION_TEST_DEVICE=cuda:0`` runs the same
checks with nvJPEG decoding and FP16 inference, against the host engine (Ultralytics) on the
same device.
"""

from __future__ import annotations

import os
from typing import Any

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from ultralytics.data.augment import LetterBox
from ultralytics.utils import ASSETS

import quality
from quality.report import QualityReport
from tests.conftest import encode_jpeg, encode_png, pil_bytes
from tests.test_hostile_uploads import corrupt_huffman
from vision_service.core.config import Settings
from vision_service.engine import DecodeLimits, Engine, FrameResult
from vision_service.engine.decode import decode_image
from vision_service.engine.device import DeviceEngine, device_decodable, letterbox_geometry, supports
from vision_service.engine.factory import load_engine
from vision_service.errors import ImageRejected, Reason
from vision_service.measurement import Detection

LIMITS = DecodeLimits(max_bytes=20 * 1024 * 1024, max_pixels=40_000_000)
PHOTOS = ["bus.jpg", "zidane.jpg"]
DEVICE = os.environ.get("VISION_TEST_DEVICE", "cpu")


def engine_on(model_path: str, device_path: str, **settings: Any) -> Engine[Any]:
    return load_engine(Settings(model=model_path, device=DEVICE, device_path=device_path, **settings))


@pytest.fixture(scope="module")
def host(model_path: str) -> Engine[Any]:
    """Ultralytics' own predict on the same device: the reference."""
    return engine_on(model_path, "off")


@pytest.fixture(scope="module")
def device_engine(model_path: str) -> DeviceEngine:
    engine = engine_on(model_path, "on")
    assert isinstance(engine, DeviceEngine)
    return engine


def run_one(engine: Engine[Any], bgr: np.ndarray) -> FrameResult:
    (result,) = engine.run([engine.from_host(bgr, source="upload")]).results
    return result


def assert_same_detections(got: list[Detection], expected: list[Detection], *, pixels: float = 3.0) -> None:
    """Same classes in the same order, boxes within ``pixels``, confidences within 0.02."""
    assert [d.class_name for d in got] == [d.class_name for d in expected]
    for a, b in zip(got, expected, strict=True):
        assert np.allclose(a.box_xyxy, b.box_xyxy, atol=pixels), (a, b)
        assert a.confidence == pytest.approx(b.confidence, abs=0.02)


def assert_same_quality(got: QualityReport, expected: QualityReport) -> None:
    """The quality issue's tolerances: 1e-3 absolute on ratios, 2% relative on sharpness and noise."""
    for name in ("brightness", "contrast", "underexposed_ratio", "overexposed_ratio"):
        assert getattr(got, name) == pytest.approx(getattr(expected, name), abs=1e-3), name
    for name in ("sharpness", "noise_sigma"):
        assert getattr(got, name) == pytest.approx(getattr(expected, name), rel=0.02), name
    assert got.colourfulness == pytest.approx(expected.colourfulness, abs=0.05)


def decode_one(engine: DeviceEngine, data: bytes) -> torch.Tensor:
    """The device pixels of one image, or its ImageRejected raised."""
    (frame,) = engine.decode([data], source="upload")
    if isinstance(frame, ImageRejected):
        raise frame
    assert (frame.width, frame.height) == (frame.pixels.shape[2], frame.pixels.shape[1])
    return frame.pixels


def on_host(pixels: torch.Tensor) -> torch.Tensor:
    """Device pixels copied to the CPU, so they can be compared with host references on any device."""
    return pixels.cpu()


@pytest.mark.parametrize("photo", PHOTOS)
def test_jpeg_bytes_give_ultralytics_detections_and_the_same_quality(
    host: Engine[Any], device_engine: DeviceEngine, photo: str
) -> None:
    data = (ASSETS / photo).read_bytes()
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    (frame,) = device_engine.decode([data], source="upload")
    assert not isinstance(frame, ImageRejected)
    assert frame.pixels.device == device_engine.device and frame.pixels.dtype == torch.uint8
    assert tuple(frame.pixels.shape) == (3, *bgr.shape[:2])
    (result,) = device_engine.run([frame]).results
    assert_same_detections(result.detections, run_one(host, bgr).detections)
    assert_same_quality(result.quality, quality.measure(bgr))
    assert (result.width, result.height) == (bgr.shape[1], bgr.shape[0])
    # The scene thumbnail comes back to the host, as the host engine makes it.
    _, thumbnail = quality.measure_scene(bgr)
    assert isinstance(result.scene, np.ndarray) and result.scene.dtype == np.float32
    assert result.scene.shape == thumbnail.shape
    assert np.abs(result.scene - thumbnail).max() < 0.05


def test_the_bus_photograph_has_a_bus_and_people(device_engine: DeviceEngine, model_path: str) -> None:
    (frame,) = device_engine.decode([(ASSETS / "bus.jpg").read_bytes()], source="upload")
    assert not isinstance(frame, ImageRejected)
    (result,) = device_engine.run([frame]).results
    names = [d.class_name for d in result.detections]
    if model_path.endswith(".pt"):  # random weights (a .yaml model) find nothing in particular
        assert "bus" in names and names.count("person") >= 3


def test_a_mixed_batch_answers_each_frame_as_if_alone(device_engine: DeviceEngine, bus_bgr: np.ndarray) -> None:
    zidane = cv2.imread(str(ASSETS / "zidane.jpg"))
    images = [bus_bgr, zidane, cv2.flip(bus_bgr, 1)]
    together = device_engine.run([device_engine.from_host(image, source="upload") for image in images]).results
    for image, result in zip(images, together, strict=True):
        alone = run_one(device_engine, image)
        assert [d.class_name for d in result.detections] == [d.class_name for d in alone.detections]
        for a, b in zip(result.detections, alone.detections, strict=True):
            assert np.allclose(a.box_xyxy, b.box_xyxy, atol=0.5)
        assert result.quality == pytest.approx(alone.quality)


@pytest.mark.parametrize(("height", "width"), [(1080, 810), (720, 1280), (481, 641), (100, 3000), (200, 150)])
def test_letterbox_matches_ultralytics(device_engine: DeviceEngine, height: int, width: int) -> None:
    rng = np.random.default_rng(height * width)
    # A smooth image: interpolation differences stay at rounding level, so pixels can be compared.
    small = rng.integers(0, 256, size=(max(2, height // 20), max(2, width // 20), 3), dtype=np.uint8)
    bgr = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    expected = LetterBox(640, auto=True, stride=32)(image=bgr)  # Ultralytics' one-image predict geometry
    geo = letterbox_geometry(height, width, 640, 32)
    got = on_host(device_engine._letterbox(device_engine.from_host(bgr, source="upload").pixels, geo))
    assert tuple(got.shape) == (3, *expected.shape[:2])
    expected_rgb = torch.from_numpy(np.ascontiguousarray(expected[:, :, ::-1])).permute(2, 0, 1).float()
    difference = (got - expected_rgb).abs()
    assert float(difference.mean()) < 0.5 and float(difference.max()) <= 8  # rounding-level, not geometry


def test_png_and_rotated_jpeg_use_the_strict_cpu_decoder(device_engine: DeviceEngine, bus_bgr: np.ndarray) -> None:
    png = encode_png(bus_bgr)
    assert not device_decodable(png, LIMITS)
    assert torch.equal(
        on_host(decode_one(device_engine, png)), on_host(device_engine.from_host(bus_bgr, source="x").pixels)
    )
    rotated = Image.fromarray(bus_bgr[:, :, ::-1])
    exif = rotated.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to view": nvJPEG would ignore it
    turned = pil_bytes(rotated, "JPEG", exif=exif)
    assert not device_decodable(turned, LIMITS)
    assert tuple(decode_one(device_engine, turned).shape) == (3, bus_bgr.shape[1], bus_bgr.shape[0])


def test_grey_jpeg_decodes_to_three_equal_channels(device_engine: DeviceEngine, bus_bgr: np.ndarray) -> None:
    grey = cv2.cvtColor(bus_bgr, cv2.COLOR_BGR2GRAY)
    data = encode_jpeg(grey)
    assert device_decodable(data, LIMITS)
    image = on_host(decode_one(device_engine, data))
    assert tuple(image.shape) == (3, *grey.shape)
    assert torch.equal(image[0], image[1]) and torch.equal(image[1], image[2])
    reference = decode_image(data, max_bytes=LIMITS.max_bytes, max_pixels=LIMITS.max_pixels)[:, :, 0]
    assert float((image[0].float() - torch.from_numpy(reference).float()).abs().mean()) < 1.0


def test_bad_bytes_are_refused_like_uploads(device_engine: DeviceEngine, model_path: str, bus_bytes: bytes) -> None:
    truncated = bus_bytes[: len(bus_bytes) // 2]
    # No end-of-image marker: never handed to nvJPEG, which may fill the missing rows with grey.
    assert device_decodable(bus_bytes, LIMITS) and not device_decodable(truncated, LIMITS)
    with pytest.raises(ImageRejected) as cut:
        decode_one(device_engine, truncated)
    assert cut.value.reason is Reason.CORRUPT_IMAGE
    small_limit = engine_on(model_path, "on", image_size=320, max_image_pixels=1000)
    assert isinstance(small_limit, DeviceEngine)
    with pytest.raises(ImageRejected) as huge:
        decode_one(small_limit, bus_bytes)
    assert huge.value.reason is Reason.TOO_MANY_PIXELS


def test_one_bad_image_in_a_batch_fails_alone(device_engine: DeviceEngine, bus_bytes: bytes) -> None:
    # Impossible Huffman tables in an otherwise complete file: it passes the header checks and
    # reaches the batched device decode, which then fails as a whole; the others must still decode.
    scrambled = corrupt_huffman(cv2.imdecode(np.frombuffer(bus_bytes, np.uint8), cv2.IMREAD_COLOR))
    assert device_decodable(scrambled, LIMITS)
    zidane = (ASSETS / "zidane.jpg").read_bytes()
    outcomes = list(device_engine.decode([bus_bytes, scrambled, b"", zidane], source="upload"))
    assert [type(o).__name__ for o in outcomes] == ["Frame", "ImageRejected", "ImageRejected", "Frame"]
    assert isinstance(outcomes[1], ImageRejected) and outcomes[1].reason is Reason.CORRUPT_IMAGE
    assert isinstance(outcomes[2], ImageRejected) and outcomes[2].reason is Reason.EMPTY
    assert torch.equal(on_host(outcomes[0].pixels), on_host(decode_one(device_engine, bus_bytes)))  # type: ignore[union-attr]
    assert torch.equal(on_host(outcomes[3].pixels), on_host(decode_one(device_engine, zidane)))  # type: ignore[union-attr]


def test_both_engines_measure_the_same_frames_alike(
    host: Engine[Any], device_engine: DeviceEngine, bus_bgr: np.ndarray, zidane_bgr: np.ndarray
) -> None:
    images = [bus_bgr, zidane_bgr]
    on_device = device_engine.run([device_engine.from_host(image, source="cam-a") for image in images])
    on_host_engine = host.run([host.from_host(image, source="cam-a") for image in images])
    for got, expected in zip(on_device.results, on_host_engine.results, strict=True):
        assert (got.width, got.height) == (expected.width, expected.height)
        assert_same_quality(got.quality, expected.quality)
        assert_same_detections(got.detections, expected.detections)
    assert sum(on_device.forward_passes) == 2


def test_only_weights_with_a_torch_module_can_use_it() -> None:
    assert supports("pt") and supports("yaml")
    assert not supports("onnx") and not supports("tflite") and not supports("engine")


@pytest.mark.parametrize("name", PHOTOS)
def test_thumbnail_is_made_on_the_device_like_the_host_engines(
    device_engine: DeviceEngine, host: Engine[Any], name: str
) -> None:
    """Area averaging on the device, one small copy back: the same picture as OpenCV's INTER_AREA.

    Torch's ``area`` mode averages whole-pixel bins, OpenCV weighs fractional ones, so fine detail
    (the bus's railings at 3.4:1) differs by a few grey levels; the image and its mean do not.
    """
    bgr = cv2.imread(str(ASSETS / name))
    frame = device_engine.from_host(bgr, source="upload")
    small = device_engine.thumbnail(frame, 320)
    reference = host.thumbnail(host.from_host(bgr, source="upload"), 320)
    assert small.shape == reference.shape and small.dtype == np.uint8 and small.flags.c_contiguous
    assert np.abs(small.astype(np.int16) - reference.astype(np.int16)).mean() < 3.0
    assert abs(float(small.mean()) - float(reference.mean())) < 0.5
    before = frame.pixels.clone()
    small[:] = 0  # the copy is the thumbnail's own: writing to it leaves the frame alone
    assert torch.equal(frame.pixels, before)


def test_thumbnail_of_a_small_frame_is_the_frame_in_bgr(device_engine: DeviceEngine, bus_bgr: np.ndarray) -> None:
    bgr = cv2.resize(bus_bgr, (120, 160), interpolation=cv2.INTER_AREA)
    frame = device_engine.from_host(bgr, source="upload")
    small = device_engine.thumbnail(frame, 640)
    assert np.array_equal(small, bgr)
    small[:] = 0
    assert int(frame.pixels.sum()) > 0
