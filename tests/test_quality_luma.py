"""Luma and analysis scale: OpenCV's exact numbers, reproduced for the torch path."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from quality.luma import LUMA_FIXED_POINT_BGR, LUMA_SHIFT, analysis_shape, area_taps, to_luma


def test_fixed_point_luma_is_opencvs_over_every_colour() -> None:
    values = np.arange(256, dtype=np.uint8)
    b, g, r = np.meshgrid(values, values, values, indexing="ij")
    every_colour = np.stack([b, g, r], axis=-1).reshape(4096, 4096, 3)
    wb, wg, wr = LUMA_FIXED_POINT_BGR
    mine = (
        every_colour[..., 0].astype(np.int64) * wb
        + every_colour[..., 1].astype(np.int64) * wg
        + every_colour[..., 2].astype(np.int64) * wr
        + (1 << (LUMA_SHIFT - 1))
    ) >> LUMA_SHIFT
    assert np.array_equal(to_luma(every_colour), mine)
    assert np.allclose(np.array([wr, wg, wb]) / 2**LUMA_SHIFT, (0.299, 0.587, 0.114), atol=1e-4)  # Rec.601


@pytest.mark.parametrize(
    ("src", "dst"),
    [
        ((1080, 810), (640, 480)),
        ((720, 1280), (360, 640)),
        ((1001, 777), (640, 497)),
        ((3000, 4000), (480, 640)),
        ((100, 7), (91, 6)),
    ],
)
def test_area_taps_reproduce_cv2_inter_area(src: tuple[int, int], dst: tuple[int, int]) -> None:
    image = np.random.default_rng(0).random(src).astype(np.float32) * 255
    rows_index, rows_weight = area_taps(src[0], dst[0])
    cols_index, cols_weight = area_taps(src[1], dst[1])
    assert np.allclose(rows_weight.sum(axis=1), 1.0) and np.allclose(cols_weight.sum(axis=1), 1.0)
    across = (image[:, cols_index] * cols_weight).sum(axis=-1)
    mine = (across[rows_index] * rows_weight[:, :, None]).sum(axis=1)
    expected = cv2.resize(image, (dst[1], dst[0]), interpolation=cv2.INTER_AREA)
    assert np.abs(mine - expected).max() < 1e-3


def test_analysis_shape_shrinks_the_longer_side_and_never_enlarges() -> None:
    assert analysis_shape(1080, 810) == (640, 480)
    assert analysis_shape(720, 1280) == (360, 640)
    assert analysis_shape(2160, 3840, 640) == (360, 640)
    assert analysis_shape(300, 451) == (300, 451)
    assert analysis_shape(10, 5000, 640) == (1, 640)
