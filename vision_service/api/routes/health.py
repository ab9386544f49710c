"""GET /healthz (the process answers) and /readyz (the model is loaded and warm)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from vision_service.api.state import State

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process is up and answering")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: the model is loaded and warm (503 until then)")
async def readyz(state: State) -> Any:
    body = {
        "ready": state.ready,
        "model": state.detector.name,
        "device": state.detector.device,
        "load_seconds": state.detector.load_seconds,
        "error": state.load_error,
    }
    return JSONResponse(body, status_code=200 if state.ready else 503)
