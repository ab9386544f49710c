"""Errors the API answers with: a bounded reason code, an HTTP status and a detail for people.

Two types, because they are counted differently:

* :class:`ImageRejected`: an image (or an upload of images) the service did not process, for
  what it carried (corrupt, too large, an unknown source ...) or because the service could not
  take it then (overloaded, model not ready). Counted in
  ``vision_images_total{outcome="rejected", reason=<reason>}``.
* :class:`ApiError`: everything else the API refuses (a missing API key, camera management);
  never counted as an image.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Why a request was refused. The value is the JSON ``error`` and, for rejected images, the metric ``reason``."""

    # Images and uploads (ImageRejected)
    EMPTY = "empty_body"
    TOO_LARGE = "too_large"
    TOO_MANY_PIXELS = "too_many_pixels"
    TOO_MANY_SCANS = "too_many_scans"
    TOO_SMALL = "too_small"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    UNSUPPORTED_FORMAT = "unsupported_format"
    NOT_AN_IMAGE = "not_an_image"
    CORRUPT_IMAGE = "corrupt_image"
    MISSING_FIELD = "missing_field"
    MALFORMED_REQUEST = "malformed_request"
    TOO_MANY_IMAGES = "too_many_images"
    UNKNOWN_SOURCE = "unknown_source"
    BODY_TIMEOUT = "body_timeout"
    NOT_READY = "model_not_ready"
    OVERLOADED = "overloaded"
    PIXEL_BUDGET = "pixel_budget_full"
    # The rest of the API (ApiError)
    UNAUTHORIZED = "unauthorized"
    INVALID_CAMERA = "invalid_camera"
    CAMERA_EXISTS = "camera_exists"
    CAMERA_NOT_FOUND = "camera_not_found"
    TOO_MANY_CAMERAS = "too_many_cameras"
    NO_FRAME = "no_frame"
    CAMERAS_SHARDED = "cameras_sharded"
    SOURCE_NOT_FOUND = "source_not_found"
    SAMPLE_NOT_FOUND = "sample_not_found"
    CAMERA_CHANGES_OFF = "camera_changes_disabled"


# HTTP status for each reason: what a client sent wrong is a 4xx; a service that cannot take work now, 503.
STATUS: dict[Reason, int] = {
    Reason.EMPTY: 400,
    Reason.TOO_LARGE: 413,
    Reason.TOO_MANY_PIXELS: 413,
    Reason.TOO_MANY_SCANS: 413,
    Reason.TOO_SMALL: 400,
    Reason.UNSUPPORTED_MEDIA_TYPE: 415,
    Reason.UNSUPPORTED_FORMAT: 415,
    Reason.NOT_AN_IMAGE: 400,
    Reason.CORRUPT_IMAGE: 400,
    Reason.MISSING_FIELD: 400,
    Reason.MALFORMED_REQUEST: 400,
    Reason.TOO_MANY_IMAGES: 413,
    Reason.UNKNOWN_SOURCE: 400,
    Reason.BODY_TIMEOUT: 408,
    Reason.NOT_READY: 503,
    Reason.OVERLOADED: 503,
    Reason.PIXEL_BUDGET: 503,
    Reason.UNAUTHORIZED: 401,
    Reason.INVALID_CAMERA: 400,
    Reason.CAMERA_EXISTS: 409,
    Reason.CAMERA_NOT_FOUND: 404,
    Reason.TOO_MANY_CAMERAS: 409,
    Reason.NO_FRAME: 404,
    Reason.CAMERAS_SHARDED: 409,
    Reason.SOURCE_NOT_FOUND: 404,
    Reason.SAMPLE_NOT_FOUND: 404,
    Reason.CAMERA_CHANGES_OFF: 403,
}


class ApiError(Exception):
    """A refusal answered as ``{"error": reason, "detail": ...}`` with the reason's status; not an image."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail

    @property
    def status_code(self) -> int:
        return STATUS[self.reason]

    def to_json(self) -> dict[str, str]:
        return {"error": self.reason.value, "detail": self.detail}


class ImageRejected(ApiError):
    """An image the service did not process; counted in ``vision_images_total{outcome="rejected"}``."""
