"""GET /healthz (the process answers) and /readyz (the model is loaded and warm)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from vision_service.api.state import State

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process is up and answering")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: the model is loaded and warm, and the service is not shutting down")
async def readyz(state: State) -> Any:
    pipeline = state.pipeline
    model = pipeline.engine.model if pipeline.ready else None
    ready = pipeline.ready and not state.draining
    body = {
        "ready": ready,
        "draining": state.draining,
        "model": model.name if model else Path(state.settings.model).name,
        "device": model.device if model else None,
        "load_seconds": model.load_seconds if model else None,
        "error": pipeline.load_error,
    }
    return JSONResponse(body, status_code=200 if ready else 503)
