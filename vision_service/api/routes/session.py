"""/v1/session: the live page's login. POST the API key once, get an HttpOnly cookie (api/session.py)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from vision_service.api import session
from vision_service.api.auth import key_matches
from vision_service.api.schemas import ErrorResponse, json_response
from vision_service.api.state import State
from vision_service.api.upload import BodyTimeouts, read_body
from vision_service.errors import ApiError, Reason

router = APIRouter(prefix="/v1/session", tags=["session"])

MAX_BODY_BYTES = 4096
FORM = "application/x-www-form-urlencoded"
FIELD = "api_key"


class SessionOut(BaseModel):
    required: bool = Field(description="An API key is configured (VISION_API_KEY): reading the API needs it.")
    authenticated: bool = Field(description="This browser may read the API now (no key needed, or a valid cookie).")


@router.get("", response_model=SessionOut, summary="Does reading the API need a key, and does this browser have one")
async def get_session(request: Request, state: State) -> Response:
    key = state.settings.api_key
    authenticated = key is None or session.valid(request.cookies.get(session.COOKIE), key)
    return json_response(SessionOut(required=key is not None, authenticated=authenticated))


_POST_DOC: dict[str, Any] = {
    "requestBody": {
        "content": {FORM: {"schema": {"type": "object", "properties": {FIELD: {"type": "string"}}}}},
        "required": True,
    }
}


@router.post(
    "",
    status_code=204,
    responses={400: {"model": ErrorResponse}, 401: {"model": ErrorResponse}},
    openapi_extra=_POST_DOC,
    summary="Log in: form field api_key; sets an HttpOnly, SameSite=Strict session cookie",
)
async def log_in(request: Request, state: State) -> Response:
    key = state.settings.api_key
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != FORM:
        raise ApiError(Reason.MALFORMED_REQUEST, f"send the key as a form: content-type {FORM}, field {FIELD}")
    timeouts = BodyTimeouts.from_settings(state.settings)
    body = await read_body(request, MAX_BODY_BYTES, timeouts=timeouts, error=ApiError)
    try:
        values = parse_qs(body.decode(), max_num_fields=4, strict_parsing=False).get(FIELD, [])
    except (UnicodeDecodeError, ValueError):
        raise ApiError(Reason.MALFORMED_REQUEST, "the form could not be read") from None
    response = Response(status_code=204)
    if key is None:
        return response  # nothing to log in to
    sent = values[0] if len(values) == 1 else ""
    if not key_matches(sent, key):
        raise ApiError(Reason.UNAUTHORIZED, "wrong API key")
    session.set_cookie(response, request, key)
    return response


@router.delete("", status_code=204, summary="Log out: clear the session cookie")
async def log_out(request: Request) -> Response:
    response = Response(status_code=204)
    session.clear_cookie(response, request)
    return response
