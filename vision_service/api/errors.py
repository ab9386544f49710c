"""Every error the API returns is JSON ``{"error": ..., "detail": ...}``; rejected images are also counted."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from vision_service.api.state import ServiceState
from vision_service.errors import ApiError, ImageRejected, Reason

log = logging.getLogger(__name__)

# How long a client should wait before retrying a 503, seconds.
RETRY_AFTER_SECONDS = 1


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def on_api_error(request: Request, exc: ApiError) -> JSONResponse:
        if isinstance(exc, ImageRejected):
            state: ServiceState = request.app.state.service
            # The routes name the (accepted) source before reading images; 'unknown' for a refused id.
            state.metrics.record_rejection(getattr(request.state, "source_label", None) or "upload", exc.reason)
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if exc.status_code == 503 else None
        return JSONResponse(exc.to_json(), status_code=exc.status_code, headers=headers)

    @app.exception_handler(HTTPException)
    async def on_http_error(request: Request, exc: HTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(
            {"error": code, "detail": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in exc.errors())
        return JSONResponse({"error": Reason.MALFORMED_REQUEST.value, "detail": problems}, status_code=400)

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"error": "internal_error", "detail": type(exc).__name__}, status_code=500)
