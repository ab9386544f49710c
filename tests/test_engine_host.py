"""The host engine: the strict CPU decoder, quality.measure and Ultralytics' own predict, for any model format."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

import quality
from tests.conftest import SHARED_MODEL, engine_for
from vision_service.errors import ImageRejected, Reason

TFLITE = Path(os.environ.get("VISION_TEST_TFLITE", SHARED_MODEL.with_name("yolo11n_int8.tflite")))


def test_model_yaml_builds_random_weights_offline_and_detects_within_the_frame(bus_bgr: np.ndarray) -> None:
    engine = engine_for("yolo11n.yaml", image_size=320)
    (result,) = engine.run([engine.from_host(bus_bgr, source="upload")]).results
    assert (result.width, result.height) == (810, 1080)
    assert result.times.inference > 0
    assert result.quality == quality.measure(bus_bgr)
    np.testing.assert_array_equal(result.scene, quality.measure_scene(bus_bgr)[1])  # the camera-health thumbnail
    for det in result.detections:
        assert 0 <= det.box_xyxy[0] <= det.box_xyxy[2] <= bus_bgr.shape[1]


def test_frames_of_different_sizes_get_what_they_would_get_alone(
    model_path: str, bus_bgr: np.ndarray, zidane_bgr: np.ndarray
) -> None:
    engine = engine_for(model_path)
    frames = [engine.from_host(image, source="upload") for image in (bus_bgr, zidane_bgr, bus_bgr)]
    analysis = engine.run(frames)
    assert sorted(analysis.forward_passes) == [1, 2]  # one predict call per frame size
    for frame, result in zip(frames, analysis.results, strict=True):
        (alone,) = engine.run([frame]).results
        assert [d.class_name for d in result.detections] == [d.class_name for d in alone.detections]
        # The same geometry: boxes agree up to float rounding of a different batch size.
        for got, expected in zip(result.detections, alone.detections, strict=True):
            assert np.allclose(got.box_xyxy, expected.box_xyxy, atol=0.01)


def test_decoding_names_each_bad_image_and_keeps_the_good_ones(bus_bytes: bytes) -> None:
    engine = engine_for("yolo11n.yaml", image_size=320)
    good, empty, cut = engine.decode([bus_bytes, b"", bus_bytes[:5000]], source="cam-a")
    assert not isinstance(good, ImageRejected) and (good.width, good.height, good.source) == (810, 1080, "cam-a")
    assert good.decode_seconds > 0
    assert isinstance(empty, ImageRejected) and empty.reason is Reason.EMPTY
    assert isinstance(cut, ImageRejected) and cut.reason is Reason.CORRUPT_IMAGE


@pytest.mark.skipif(not TFLITE.is_file(), reason=f"no INT8 TFLite export at {TFLITE}")
def test_int8_tflite_export_finds_the_bus_and_people(bus_bgr: np.ndarray) -> None:
    engine = engine_for(str(TFLITE), device_path="on")  # no torch module: the host engine, whatever is asked
    (result,) = engine.run([engine.from_host(bus_bgr, source="upload")]).results
    names = [d.class_name for d in result.detections]
    assert "bus" in names and names.count("person") >= 3


def test_thumbnail_is_an_area_downscaled_copy_that_owns_its_memory(bus_bgr: np.ndarray) -> None:
    engine = engine_for("yolo11n.yaml", image_size=320)
    frame = engine.from_host(bus_bgr, source="upload")
    small = engine.thumbnail(frame, 320)
    assert small.shape == (320, 240, 3) and small.dtype == np.uint8  # 810x1080 -> longer side 320
    assert np.array_equal(small, cv2.resize(bus_bgr, (240, 320), interpolation=cv2.INTER_AREA))
    same = engine.thumbnail(frame, 4096)  # never enlarged
    assert np.array_equal(same, bus_bgr) and not np.shares_memory(same, bus_bgr)
