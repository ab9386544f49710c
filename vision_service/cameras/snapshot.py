"""A processed camera frame as a JPEG with its detections drawn on it."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from vision_service.measurement import Detection

BOX_COLOR = (255, 0, 255)  # BGR magenta: rare in real scenes, easy to see
TEXT_COLOR = (255, 255, 255)
JPEG_QUALITY = 85


def draw_detections(pixels: np.ndarray, detections: Sequence[Detection]) -> np.ndarray:
    """A copy of ``pixels`` with a box and 'class confidence' label per detection."""
    out = pixels.copy()
    height, width = out.shape[:2]
    thickness = max(2, round(max(height, width) / 320))
    scale = max(0.4, max(height, width) / 1600)
    for d in detections:
        x1, y1, x2, y2 = (round(v) for v in d.box_xyxy)
        cv2.rectangle(out, (x1, y1), (x2, y2), BOX_COLOR, thickness)
        label = f"{d.class_name} {d.confidence:.2f}"
        (tw, th), baseline = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        top = max(y1 - th - baseline - 2, 0)
        cv2.rectangle(out, (x1, top), (x1 + tw + 4, top + th + baseline + 2), BOX_COLOR, -1)
        cv2.putText(out, label, (x1 + 2, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, TEXT_COLOR, 1, cv2.LINE_AA)
    return out


def annotated_jpeg(pixels: np.ndarray, detections: Sequence[Detection], *, quality: int = JPEG_QUALITY) -> bytes:
    ok, buffer = cv2.imencode(".jpg", draw_detections(pixels, detections), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buffer.tobytes()
