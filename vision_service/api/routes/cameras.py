"""/v1/cameras: list, add, inspect, remove cameras and fetch an annotated snapshot.

URLs in every response are masked (``rtsp://user:***@host/...``); errors never echo a URL.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from vision_service.api.schemas import ErrorResponse, json_response
from vision_service.api.state import State
from vision_service.api.upload import BodyTimeouts, read_body
from vision_service.cameras.config import Camera
from vision_service.errors import ApiError, Reason

router = APIRouter(prefix="/v1/cameras", tags=["cameras"])

# A camera definition is a few hundred bytes; refuse anything far larger before parsing it.
MAX_BODY_BYTES = 16 * 1024


class FrameCounts(BaseModel):
    processed: int
    dropped: int
    failed: int


class LastFrame(BaseModel):
    processed_at: float | None = Field(description="Unix time the frame was processed.")
    quality: dict[str, float] = Field(description="The frame's quality report (as /v1/detect's 'quality').")
    brightness_band: str
    detections: int
    image: dict[str, int]


class HealthOut(BaseModel):
    tampered: list[str] = Field(description="Tampering kinds that count now: covered, moved, defocused, obscured.")
    scores: dict[str, float] = Field(
        description="Last frame's evidence per kind against the reference scene (1 = like it); empty while learning."
    )
    regime: str | None = Field(description="day or night, by the last frame.")
    references: dict[str, int] = Field(description="Regimes with a learned reference scene, and its frames.")
    learning: dict[str, int] = Field(description="Regimes whose reference is being learned, and the frames so far.")
    new_frame_age_seconds: float | None = Field(
        description="Seconds since the last frame whose content changed (a frozen picture keeps growing it)."
    )
    last_new_frame_at: float | None = Field(description="Unix time of that frame.")


class CameraOut(BaseModel):
    id: str
    url: str = Field(description="The camera URL with credentials masked.")
    fps: float
    enabled: bool
    loop: bool
    tls_verify: bool
    status: str = Field(description="connecting, up, reconnecting, ended, disabled, invalid or stopped.")
    up: bool
    error: str | None = Field(description="Why the camera is not up, when it is not.")
    frames: FrameCounts
    reconnects: int
    last_frame_at: float | None = Field(description="Unix time of the last frame read from the camera.")
    last: LastFrame | None = Field(description="The last processed frame: quality report and detection count.")
    measured_fps: float = Field(description="Frames processed per second over the last 10 s.")
    health: HealthOut = Field(description="Tampering and frozen-picture state (docs/camera-health.md).")


class ShardOut(BaseModel):
    id: str = Field(description="This replica's member id (VISION_SHARD_ID).")
    peers: str = Field(description="Where the member list comes from (VISION_SHARD_PEERS).")
    members: list[str] = Field(description="The members this replica sees now.")
    cameras_owned: int = Field(description="Cameras of the shared file this replica reads.")
    cameras_configured: int = Field(description="Cameras in the shared file, over all replicas.")


class CameraList(BaseModel):
    cameras: list[CameraOut] = Field(description="The cameras this replica reads (its shard, when sharded).")
    shard: ShardOut | None = Field(None, description="Present when cameras are sharded across replicas.")


_ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorResponse} for code in (400, 401, 403, 404, 409)}


def require_changes_allowed(state: State) -> None:
    """Adding or removing a camera makes the service open URLs: only with an API key, or when the operator says so."""
    mode = state.settings.cameras_api
    if mode == "off" or (mode == "auto" and state.settings.api_key is None):
        why = "VISION_CAMERAS_API is off" if mode == "off" else "no VISION_API_KEY is set (or VISION_CAMERAS_API=on)"
        raise ApiError(Reason.CAMERA_CHANGES_OFF, f"cameras cannot be added or removed over the API: {why}")


_CHANGES = [Depends(require_changes_allowed)]
_BODY_DOC: dict[str, Any] = {
    "requestBody": {"content": {"application/json": {"schema": Camera.model_json_schema()}}, "required": True}
}


@router.get("", response_model=CameraList, responses=_ERRORS, summary="List cameras with status and counters")
async def list_cameras(state: State) -> Response:
    manager = state.cameras
    shard = manager.shard_view()
    return json_response(
        CameraList(
            cameras=[CameraOut.model_validate(view) for view in manager.list()],
            shard=None if shard is None else ShardOut.model_validate(shard),
        )
    )


@router.post(
    "",
    status_code=201,
    response_model=CameraOut,
    responses=_ERRORS,
    openapi_extra=_BODY_DOC,
    dependencies=_CHANGES,
    summary="Add a camera: JSON {id, url, fps, enabled, loop, tls_verify}",
)
async def add_camera(request: Request, state: State) -> Response:
    settings = state.settings
    timeouts = BodyTimeouts.from_settings(settings)
    body = await read_body(request, MAX_BODY_BYTES, timeouts=timeouts, error=ApiError)
    try:
        data = json.loads(body or b"null")
    except (ValueError, RecursionError):
        # json's message quotes no input, but say only what matters.
        raise ApiError(Reason.INVALID_CAMERA, "the body must be a JSON object") from None
    view = await run_in_threadpool(state.cameras.add, data)
    headers = {"Location": f"/v1/cameras/{view['id']}"}
    return json_response(CameraOut.model_validate(view), status_code=201, headers=headers)


@router.get("/{camera_id}", response_model=CameraOut, responses=_ERRORS, summary="One camera: status, last quality")
async def get_camera(camera_id: str, state: State) -> Response:
    return json_response(CameraOut.model_validate(state.cameras.get(camera_id)))


@router.delete(
    "/{camera_id}",
    status_code=204,
    responses=_ERRORS,
    dependencies=_CHANGES,
    summary="Remove a camera, its thread, its metric series and its drift state",
)
async def delete_camera(camera_id: str, state: State) -> Response:
    await run_in_threadpool(state.cameras.remove, camera_id)
    return Response(status_code=204)


@router.delete(
    "/{camera_id}/reference",
    status_code=204,
    responses=_ERRORS,
    # A reset also silences a tampering alarm (the covered view would become the reference): it is
    # guarded like adding and removing cameras.
    dependencies=_CHANGES,
    summary="Forget the camera's reference scene (after a PTZ move); it is learned again from the next frames",
)
async def reset_reference(camera_id: str, state: State) -> Response:
    await run_in_threadpool(state.cameras.reset_reference, camera_id)
    return Response(status_code=204)


@router.get(
    "/{camera_id}/snapshot",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}, **_ERRORS},
    summary="The last processed frame as JPEG with its detections drawn",
)
async def camera_snapshot(camera_id: str, state: State) -> Response:
    jpeg = await run_in_threadpool(state.cameras.snapshot, camera_id)
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})
