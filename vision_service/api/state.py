"""What the routes share: settings, detector, pipeline and metrics, plus model readiness."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from vision_service.cameras.manager import CameraManager
from vision_service.core.config import Settings
from vision_service.detector import Detector, ModelLoadError
from vision_service.drift import DriftTracker
from vision_service.metrics import Metrics
from vision_service.pipeline import Pipeline

log = logging.getLogger(__name__)


@dataclass
class ServiceState:
    settings: Settings
    detector: Detector
    pipeline: Pipeline
    metrics: Metrics
    sources: set[str] = field(default_factory=set)
    drift: DriftTracker | None = None
    cameras: CameraManager | None = None
    load_error: str | None = None
    started_at: float = field(default_factory=time.time)

    @property
    def ready(self) -> bool:
        return self.detector.loaded and self.load_error is None

    def load_model(self) -> None:
        """Load and warm the model; on failure keep the service alive and remember why."""
        try:
            self.detector.load()
        except ModelLoadError as exc:
            self.load_error = str(exc)
            self.metrics.model_failed()
            log.error("%s", exc)
            return
        self.load_error = None
        self.metrics.model_loaded(
            model=self.detector.name,
            device=self.detector.device,
            task=self.detector.task,
            fmt=self.detector.format,
            seconds=self.detector.load_seconds or 0.0,
        )

    def load_model_in_background(self) -> threading.Thread:
        thread = threading.Thread(target=self.load_model, name="model-loader", daemon=True)
        thread.start()
        return thread


def get_state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


# Route parameter type: ``state: State`` injects the shared ServiceState.
State = Annotated[ServiceState, Depends(get_state)]
