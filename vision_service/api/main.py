"""The FastAPI app, composed from route modules and one settings object."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request, Response
from prometheus_client import disable_created_metrics, start_http_server
from starlette.concurrency import run_in_threadpool
from starlette.middleware.base import RequestResponseEndpoint

from vision_service import __version__
from vision_service.api.auth import require_api_key, require_metrics_key
from vision_service.api.errors import install_error_handlers
from vision_service.api.routes import cameras, detect, docs, health, metrics, page, session, sources
from vision_service.api.state import ServiceState
from vision_service.cameras.manager import CameraManager
from vision_service.conditions import ConditionMonitor
from vision_service.core.config import Settings
from vision_service.drift import DriftCollector, DriftTracker
from vision_service.evidence import EvidenceCollector, EvidenceKeeper
from vision_service.gpu import GpuCollector
from vision_service.history import SignalHistory
from vision_service.metrics import Metrics
from vision_service.pipeline import Pipeline
from vision_service.sources import Sources
from vision_service.thresholds import load_thresholds


def build_state(settings: Settings) -> ServiceState:
    """Wire pipeline, metrics, drift, history, conditions, evidence, sources and cameras from settings
    (the model is not loaded yet). Raises ThresholdsError for an unusable VISION_THRESHOLDS_FILE."""
    metrics_ = Metrics()
    metrics_.registry.register(GpuCollector())
    drift = DriftTracker.from_settings(settings)  # loads the baselines in VISION_BASELINE_DIR
    metrics_.registry.register(DriftCollector(drift))
    history = SignalHistory()
    conditions = ConditionMonitor(load_thresholds(settings.thresholds_file), history, drift)
    evidence = EvidenceKeeper.from_settings(settings, active=conditions.active) if settings.evidence_enabled else None
    if evidence is not None:
        metrics_.registry.register(EvidenceCollector(evidence))
    # A removed camera's series, drift, history, conditions and selection state go with it
    # (its evidence frames stay until they age out or are evicted).
    forget = [metrics_.forget_source, drift.forget, history.forget, conditions.forget]
    sources = Sources(settings.sources, on_removed=forget + ([evidence.forget] if evidence is not None else []))
    # Sink order matters once: conditions read the history recorded just before them.
    pipeline = Pipeline.from_settings(
        settings,
        sinks=[metrics_.record, drift.record, history.record, conditions.record],
        batch_sinks=[metrics_.batch_size.observe],
        keepers=[evidence] if evidence is not None else [],
        accepts=sources.__contains__,
    )
    metrics_.track_queue(lambda: pipeline.pending, lambda: pipeline.pixels_in_flight)
    metrics_.model_ready.set(0)
    return ServiceState(
        settings=settings,
        pipeline=pipeline,
        metrics=metrics_,
        sources=sources,
        drift=drift,
        cameras=CameraManager.from_settings(settings, pipeline=pipeline, telemetry=metrics_, sources=sources),
        history=history,
        conditions=conditions,
        evidence=evidence,
    )


def create_app(settings: Settings | None = None, *, load_model: bool = True) -> FastAPI:
    settings = settings or Settings()
    # No `*_created` series (one per counter and histogram child): no panel or rule reads them.
    disable_created_metrics()
    state = build_state(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.pipeline.start()
        if load_model:
            state.load_model_in_background()
        # An invalid VISION_CAMERAS_FILE stops the start-up with a message naming the camera.
        await run_in_threadpool(state.cameras.start)
        if settings.metrics_port is not None:
            # A separate port keeps /metrics reachable by Prometheus while the API is firewalled.
            server, thread = start_http_server(
                settings.metrics_port, addr=settings.host, registry=state.metrics.registry
            )
        yield
        await run_in_threadpool(state.cameras.stop)
        # After the cameras: frames already queued (uploads in flight, a camera round) are finished.
        await run_in_threadpool(state.pipeline.close, 30.0)
        if state.evidence is not None:  # after the pipeline: frames it kept last are written
            await run_in_threadpool(state.evidence.close, 10.0)
        if settings.metrics_port is not None:
            server.shutdown()
            thread.join(timeout=5)

    app = FastAPI(
        title="vision-service",
        version=__version__,
        description="YOLO detection with per-image input quality, exported to Prometheus.",
        lifespan=lifespan,
        # VISION_API_DOCS=false: no /openapi.json, and no /docs or /redoc below.
        openapi_url="/openapi.json" if settings.api_docs else None,
        # /docs and /redoc come from routes/docs.py, with their assets served here, not from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = state
    install_error_handlers(app)
    # Detection (and camera management) sit behind the optional API key; health never does.
    app.include_router(detect.router, dependencies=[Depends(require_api_key)])
    app.include_router(cameras.router, dependencies=[Depends(require_api_key)])
    # What a source looks like now, and its evidence frames: the same key (or, to read, the page's session).
    app.include_router(sources.router, dependencies=[Depends(require_api_key)])
    app.include_router(session.router)
    app.include_router(page.router)
    app.include_router(health.router)
    if settings.api_docs:
        app.include_router(docs.router)
    if settings.metrics_port is None:
        app.include_router(metrics.router, dependencies=[Depends(require_metrics_key)])

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
