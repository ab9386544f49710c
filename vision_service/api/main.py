"""The FastAPI app, composed from route modules and one settings object."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from starlette.middleware.base import RequestResponseEndpoint

from vision_service import __version__
from vision_service.api.errors import install_error_handlers
from vision_service.api.routes import detect, health, metrics
from vision_service.api.state import ServiceState
from vision_service.core.config import UPLOAD_SOURCE, Settings
from vision_service.detector import Detector
from vision_service.gpu import GpuCollector
from vision_service.metrics import Metrics
from vision_service.pipeline import Pipeline


def build_state(settings: Settings) -> ServiceState:
    """Wire detector, pipeline and metrics from settings (the model is not loaded yet)."""
    detector = Detector(
        settings.model,
        device=settings.device,
        image_size=settings.image_size,
        confidence=settings.confidence,
        iou=settings.iou,
    )
    metrics_ = Metrics()
    metrics_.registry.register(GpuCollector())
    pipeline = Pipeline(
        detector,
        analysis_size=settings.analysis_size,
        max_pending=settings.max_pending_frames,
        sinks=[metrics_.record],
    )
    metrics_.track_queue(lambda: pipeline.pending)
    metrics_.model_ready.set(0)
    return ServiceState(
        settings=settings,
        detector=detector,
        pipeline=pipeline,
        metrics=metrics_,
        sources={UPLOAD_SOURCE, *settings.sources},
    )


def create_app(settings: Settings | None = None, *, load_model: bool = True) -> FastAPI:
    settings = settings or Settings()
    state = build_state(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if load_model:
            state.load_model_in_background()
        yield

    app = FastAPI(
        title="vision-service",
        version=__version__,
        description="YOLO detection with per-image input quality, exported to Prometheus.",
        lifespan=lifespan,
    )
    app.state.service = state
    install_error_handlers(app)
    for module in (detect, health, metrics):
        app.include_router(module.router)

    @app.middleware("http")
    async def time_requests(request: Request, call_next: RequestResponseEndpoint) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        # The route template, never the raw path: /v1/cameras/{camera_id}, not a client's string.
        template = getattr(route, "path", "unmatched")
        state.metrics.observe_request(template, request.method, response.status_code, time.perf_counter() - started)
        return response

    return app
