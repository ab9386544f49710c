"""Response models: they document the API in OpenAPI and check what the routes return."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ErrorResponse(BaseModel):
    error: str = Field(description="A stable reason code, e.g. 'corrupt_image' or 'too_large'.")
    detail: str = Field(description="What was wrong, for a person.")


class DetectionOut(BaseModel):
    class_id: int
    class_name: str
    confidence: float
    box_xyxy: list[float] = Field(description="x1, y1, x2, y2 in original image pixels.")


class QualityOut(BaseModel):
    brightness: float = Field(description="Mean Rec.601 luma / 255, 0..1.")
    contrast: float = Field(description="Std of luma / 255 (RMS contrast).")
    sharpness: float = Field(description="Variance of the Laplacian of luma; low = blurry.")
    noise_sigma: float = Field(description="Estimated additive noise std, 8-bit grey levels.")
    underexposed_ratio: float = Field(description="Fraction of pixels clipped dark.")
    overexposed_ratio: float = Field(description="Fraction of pixels clipped bright.")


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
