"""What the routes share: settings, pipeline, metrics, sources, drift, cameras, history, conditions and
evidence, and loading the model."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from vision_service.cameras.manager import CameraManager
from vision_service.conditions import ConditionMonitor
from vision_service.core.config import Settings
from vision_service.drift import DriftTracker
from vision_service.engine.factory import ModelLoadError, load_engine
from vision_service.evidence import EvidenceKeeper
from vision_service.history import SignalHistory
from vision_service.metrics import Metrics
from vision_service.pipeline import Pipeline
from vision_service.sources import Sources

log = logging.getLogger(__name__)


@dataclass
class ServiceState:
    settings: Settings
    pipeline: Pipeline
    metrics: Metrics
    sources: Sources
    drift: DriftTracker
    cameras: CameraManager
    history: SignalHistory
    conditions: ConditionMonitor
    evidence: EvidenceKeeper | None  # None with VISION_EVIDENCE_ENABLED=false
    # Set on the first shutdown signal: /readyz answers 503 while requests are still served.
    draining: bool = False

    def load_model(self) -> None:
        """Load the engine and hand it to the pipeline; on failure keep the service alive and say why."""
        try:
            engine = load_engine(self.settings)
        except ModelLoadError as exc:
            self.pipeline.failed(str(exc))
            self.metrics.model_failed()
            log.error("%s", exc)
            return
        self.pipeline.use(engine)
        self.metrics.model_loaded(engine.model)

    def load_model_in_background(self) -> threading.Thread:
        thread = threading.Thread(target=self.load_model, name="model-loader", daemon=True)
        thread.start()
        return thread


def get_state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


# Route parameter type: ``state: State`` injects the shared ServiceState.
State = Annotated[ServiceState, Depends(get_state)]
