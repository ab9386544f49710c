"""The device path gives Ultralytics' detections and quality.measure's signals, computed on a torch device.

They run on the CPU by default. On a GPU machine ``VISION_TEST_DEVICE=cuda:0`` runs the same
checks with nvJPEG decoding and FP16 inference, against Ultralytics on the same device.
"""

from __future__ import annotations

import os

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
from vision_service.decode import decode_image
from vision_service.detector import Detector, FrameDetections
from vision_service.device_path import DevicePath, device_decodable, letterbox_geometry, supports
from vision_service.errors import InputError, Reason
from vision_service.measurement import Detection
from vision_service.pipeline import PendingFrame, Pipeline

LIMITS = {"max_bytes": 20 * 1024 * 1024, "max_pixels": 40_000_000}
PHOTOS = ["bus.jpg", "zidane.jpg"]
DEVICE = os.environ.get("VISION_TEST_DEVICE", "cpu")


@pytest.fixture(scope="module")
def detector(model_path: str) -> Detector:
    detector = Detector(model_path, device=DEVICE)
    detector.load()
    return detector


@pytest.fixture(scope="module")
def device_path(detector: Detector) -> DevicePath:
    return DevicePath.from_detector(detector)


def assert_same_detections(got: list[Detection], expected: FrameDetections, *, pixels: float = 3.0) -> None:
    """Same classes in the same order, boxes within ``pixels``, confidences within 0.02."""
    assert [d.class_name for d in got] == [d.class_name for d in expected.detections]
    for a, b in zip(got, expected.detections, strict=True):
        assert np.allclose(a.box_xyxy, b.box_xyxy, atol=pixels), (a, b)
        assert a.confidence == pytest.approx(b.confidence, abs=0.02)


def assert_same_quality(got: QualityReport, expected: QualityReport) -> None:
    """The quality issue's tolerances: 1e-3 absolute on ratios, 2% relative on sharpness and noise."""
    for name in ("brightness", "contrast", "underexposed_ratio", "overexposed_ratio"):
        assert getattr(got, name) == pytest.approx(getattr(expected, name), abs=1e-3), name
    for name in ("sharpness", "noise_sigma"):
        assert getattr(got, name) == pytest.approx(getattr(expected, name), rel=0.02), name


@pytest.mark.parametrize("photo", PHOTOS)
def test_jpeg_bytes_give_ultralytics_detections_and_the_same_quality(
    detector: Detector, device_path: DevicePath, photo: str
) -> None:
    data = (ASSETS / photo).read_bytes()
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    image = decode_one(device_path, data)
    assert image.device == device_path.device and image.dtype == torch.uint8
    assert tuple(image.shape) == (3, *bgr.shape[:2])
    (result,) = device_path.run([image])
    (reference,) = detector.predict([bgr])
    assert_same_detections(result.detections, reference)
    assert_same_quality(result.quality, quality.measure(bgr))
    assert (result.width, result.height) == (bgr.shape[1], bgr.shape[0])


def test_the_bus_photograph_has_a_bus_and_people(device_path: DevicePath, model_path: str) -> None:
    image = decode_one(device_path, (ASSETS / "bus.jpg").read_bytes())
    (result,) = device_path.run([image])
    names = [d.class_name for d in result.detections]
    if model_path.endswith(".pt"):  # random weights (a .yaml model) find nothing in particular
        assert "bus" in names and names.count("person") >= 3


def test_a_mixed_batch_answers_each_frame_as_if_alone(device_path: DevicePath, bus_bgr: np.ndarray) -> None:
    zidane = cv2.imread(str(ASSETS / "zidane.jpg"))
    frames = [bus_bgr, zidane, cv2.flip(bus_bgr, 1)]
    together = device_path.run([device_path.upload(f) for f in frames])
    for frame, result in zip(frames, together, strict=True):
        (alone,) = device_path.run([device_path.upload(frame)])
        assert [d.class_name for d in result.detections] == [d.class_name for d in alone.detections]
        for a, b in zip(result.detections, alone.detections, strict=True):
            assert np.allclose(a.box_xyxy, b.box_xyxy, atol=0.5)
        assert result.quality == pytest.approx(alone.quality)


@pytest.mark.parametrize(("height", "width"), [(1080, 810), (720, 1280), (481, 641), (100, 3000), (200, 150)])
def test_letterbox_matches_ultralytics(device_path: DevicePath, height: int, width: int) -> None:
    rng = np.random.default_rng(height * width)
    # A smooth image: interpolation differences stay at rounding level, so pixels can be compared.
    small = rng.integers(0, 256, size=(max(2, height // 20), max(2, width // 20), 3), dtype=np.uint8)
    bgr = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    expected = LetterBox(640, auto=True, stride=32)(image=bgr)  # Ultralytics' one-image predict geometry
    geo = letterbox_geometry(height, width, 640, 32)
    got = device_path._letterbox(device_path.upload(bgr), geo)
    assert tuple(got.shape) == (3, *expected.shape[:2])
    expected_rgb = torch.from_numpy(np.ascontiguousarray(expected[:, :, ::-1])).permute(2, 0, 1).float()
    difference = (got - expected_rgb).abs()
    assert float(difference.mean()) < 0.5 and float(difference.max()) <= 8  # rounding-level, not geometry


def decode_one(device_path: DevicePath, data: bytes, **limits: int) -> torch.Tensor:
    (image,) = device_path.decode([data], **(limits or LIMITS))
    if isinstance(image, InputError):
        raise image
    return image


def test_png_and_rotated_jpeg_use_the_strict_cpu_decoder(device_path: DevicePath, bus_bgr: np.ndarray) -> None:
    png = encode_png(bus_bgr)
    assert not device_decodable(png, **LIMITS)
    assert torch.equal(decode_one(device_path, png), device_path.upload(bus_bgr))
    rotated = Image.fromarray(bus_bgr[:, :, ::-1])
    exif = rotated.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to view": nvJPEG would ignore it
    turned = pil_bytes(rotated, "JPEG", exif=exif)
    assert not device_decodable(turned, **LIMITS)
    assert tuple(decode_one(device_path, turned).shape) == (3, bus_bgr.shape[1], bus_bgr.shape[0])


def test_grey_jpeg_decodes_to_three_equal_channels(device_path: DevicePath, bus_bgr: np.ndarray) -> None:
    grey = cv2.cvtColor(bus_bgr, cv2.COLOR_BGR2GRAY)
    data = encode_jpeg(grey)
    assert device_decodable(data, **LIMITS)
    image = decode_one(device_path, data)
    assert tuple(image.shape) == (3, *grey.shape)
    assert torch.equal(image[0], image[1]) and torch.equal(image[1], image[2])
    reference = decode_image(data, **LIMITS).pixels[:, :, 0]
    assert float((image[0].float() - torch.from_numpy(reference).float()).abs().mean()) < 1.0


def test_bad_bytes_are_refused_like_uploads(device_path: DevicePath, bus_bytes: bytes) -> None:
    truncated = bus_bytes[: len(bus_bytes) // 2]
    # No end-of-image marker: never handed to nvJPEG, which may fill the missing rows with grey.
    assert device_decodable(bus_bytes, **LIMITS) and not device_decodable(truncated, **LIMITS)
    with pytest.raises(InputError) as cut:
        decode_one(device_path, truncated)
    assert cut.value.reason is Reason.CORRUPT_IMAGE
    with pytest.raises(InputError) as huge:
        decode_one(device_path, bus_bytes, max_bytes=LIMITS["max_bytes"], max_pixels=1000)
    assert huge.value.reason is Reason.TOO_MANY_PIXELS


def test_one_bad_image_in_a_batch_fails_alone(device_path: DevicePath, bus_bytes: bytes) -> None:
    # Impossible Huffman tables in an otherwise complete file: it passes the header checks and
    # reaches the batched device decode, which then fails as a whole; the others must still decode.
    scrambled = corrupt_huffman(cv2.imdecode(np.frombuffer(bus_bytes, np.uint8), cv2.IMREAD_COLOR))
    assert device_decodable(scrambled, **LIMITS)
    zidane = (ASSETS / "zidane.jpg").read_bytes()
    outcomes = device_path.decode([bus_bytes, scrambled, b"", zidane], **LIMITS)
    assert [type(o).__name__ for o in outcomes] == ["Tensor", "InputError", "InputError", "Tensor"]
    assert isinstance(outcomes[1], InputError) and outcomes[1].reason is Reason.CORRUPT_IMAGE
    assert isinstance(outcomes[2], InputError) and outcomes[2].reason is Reason.EMPTY
    assert torch.equal(outcomes[0], decode_one(device_path, bus_bytes))
    assert torch.equal(outcomes[3], decode_one(device_path, zidane))


def test_pipeline_on_the_device_path_records_the_same_measurements(
    detector: Detector, bus_bgr: np.ndarray, zidane_bgr: np.ndarray
) -> None:
    sizes: list[int] = []
    classic = Pipeline(detector)
    device = Pipeline(detector, batch_sinks=[sizes.append], device_path_mode="on")
    frames = [PendingFrame(bus_bgr, "cam-a"), PendingFrame(zidane_bgr, "cam-b")]
    for got, expected in zip(device.process(frames), classic.process(frames), strict=True):
        assert (got.source, got.width, got.height) == (expected.source, expected.width, expected.height)
        assert_same_quality(got.quality, expected.quality)
        assert [d.class_name for d in got.detections] == [d.class_name for d in expected.detections]
    assert device.device_path is not None and classic.device_path is None
    assert sum(sizes) == 2


def test_only_weights_with_a_torch_module_can_use_it() -> None:
    assert supports(Detector("yolo11n.pt", device="cpu"))
    assert supports(Detector("yolo11n.yaml", device="cpu"))
    assert not supports(Detector("yolo11n.onnx", device="cpu"))
    assert not supports(Detector("yolo11n_int8.tflite", device="cpu"))
