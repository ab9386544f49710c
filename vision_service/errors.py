"""Input errors with a bounded set of reasons: each reason is also a metric label value."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Why an input was refused. The value is the JSON ``error`` and the metric ``reason``."""

    EMPTY = "empty_body"
    TOO_LARGE = "too_large"
    TOO_MANY_PIXELS = "too_many_pixels"
    TOO_SMALL = "too_small"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    UNSUPPORTED_FORMAT = "unsupported_format"
    NOT_AN_IMAGE = "not_an_image"
    CORRUPT_IMAGE = "corrupt_image"
    MISSING_FIELD = "missing_field"
    MALFORMED_REQUEST = "malformed_request"
    TOO_MANY_IMAGES = "too_many_images"
    UNKNOWN_SOURCE = "unknown_source"
    NOT_READY = "model_not_ready"
    OVERLOADED = "overloaded"
    UNAUTHORIZED = "unauthorized"
    BODY_TIMEOUT = "body_timeout"
    # Camera management (/v1/cameras): not image rejections, so never counted in vision_images_total.
    INVALID_CAMERA = "invalid_camera"
    CAMERA_EXISTS = "camera_exists"
    CAMERA_NOT_FOUND = "camera_not_found"
    TOO_MANY_CAMERAS = "too_many_cameras"
    NO_FRAME = "no_frame"
    CAMERAS_SHARDED = "cameras_sharded"


# HTTP status for each reason; everything a client sent wrong is a 4xx.
STATUS: dict[Reason, int] = {
    Reason.EMPTY: 400,
    Reason.TOO_LARGE: 413,
    Reason.TOO_MANY_PIXELS: 413,
    Reason.TOO_SMALL: 400,
    Reason.UNSUPPORTED_MEDIA_TYPE: 415,
    Reason.UNSUPPORTED_FORMAT: 415,
    Reason.NOT_AN_IMAGE: 400,
    Reason.CORRUPT_IMAGE: 400,
    Reason.MISSING_FIELD: 400,
    Reason.MALFORMED_REQUEST: 400,
    Reason.TOO_MANY_IMAGES: 413,
    Reason.UNKNOWN_SOURCE: 400,
    Reason.NOT_READY: 503,
    Reason.OVERLOADED: 503,
    Reason.UNAUTHORIZED: 401,
    Reason.BODY_TIMEOUT: 408,
    Reason.INVALID_CAMERA: 400,
    Reason.CAMERA_EXISTS: 409,
    Reason.CAMERA_NOT_FOUND: 404,
    Reason.TOO_MANY_CAMERAS: 409,
    Reason.NO_FRAME: 404,
    Reason.CAMERAS_SHARDED: 409,
}


CAMERA_REASONS = frozenset(
    {
        Reason.INVALID_CAMERA,
        Reason.CAMERA_EXISTS,
        Reason.CAMERA_NOT_FOUND,
        Reason.TOO_MANY_CAMERAS,
        Reason.NO_FRAME,
        Reason.CAMERAS_SHARDED,
    }
)


class InputError(Exception):
    """A request or image the service refuses, with a reason code and a human detail."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail

    @property
    def status_code(self) -> int:
        return STATUS[self.reason]

    def to_json(self) -> dict[str, str]:
        return {"error": self.reason.value, "detail": self.detail}
