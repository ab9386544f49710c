"""Response models: the routes build their answers from them, and they document the API in OpenAPI."""

from __future__ import annotations

from fastapi import Response
from pydantic import BaseModel, Field, create_model

import quality
from vision_service.measurement import Measurement


class ErrorResponse(BaseModel):
    error: str = Field(description="A stable reason code, e.g. 'corrupt_image' or 'too_large'.")
    detail: str = Field(description="What was wrong, for a person.")


class DetectionOut(BaseModel):
    class_id: int
    class_name: str
    confidence: float
    box_xyxy: list[float] = Field(description="x1, y1, x2, y2 in original image pixels.")


# One field per signal of the quality report (quality.SIGNALS), so a new signal needs no change here.
QualityOut: type[BaseModel] = create_model(
    "QualityOut",
    __doc__="The image-quality signals of one image (see quality/report.py for each formula).",
    **{s.field: (float, Field(description=s.description)) for s in quality.SIGNALS},  # type: ignore[call-overload]
)


class ImageSize(BaseModel):
    width: int
    height: int


class Timings(BaseModel):
    decode: float
    quality: float
    preprocess: float
    inference: float
    postprocess: float
    total: float


class ModelOut(BaseModel):
    name: str
    device: str


class DetectResponse(BaseModel):
    source: str
    detections: list[DetectionOut]
    count: int
    quality: QualityOut
    image: ImageSize
    timings_ms: Timings
    model: ModelOut


class BatchItem(BaseModel):
    index: int
    ok: bool
    error: str | None = None
    detail: str | None = None
    source: str | None = None
    detections: list[DetectionOut] | None = None
    count: int | None = None
    quality: QualityOut | None = None
    image: ImageSize | None = None
    timings_ms: Timings | None = None
    model: ModelOut | None = None


class BatchResponse(BaseModel):
    results: list[BatchItem]
    processed: int
    failed: int


def detect_response(m: Measurement, model: ModelOut) -> DetectResponse:
    """The answer for one processed image."""
    t = m.times
    return DetectResponse(
        source=m.source,
        detections=[DetectionOut(**d.as_dict()) for d in m.detections],
        count=len(m.detections),
        quality=QualityOut(**m.quality.as_dict()),
        image=ImageSize(width=m.width, height=m.height),
        timings_ms=Timings(**{stage: seconds * 1000 for stage, seconds in t.as_items()}, total=m.total_seconds * 1000),
        model=model,
    )


def json_response(body: BaseModel, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    """``body`` serialised once by pydantic (a returned model would be dumped and validated again by FastAPI)."""
    return Response(body.model_dump_json(), status_code=status_code, media_type="application/json", headers=headers)
