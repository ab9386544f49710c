"""/v1/sources: each source's current signals, drift, conditions and evidence frames (docs/evidence.md).

Exposition only: everything shown is computed on request from what the sinks already keep (the
history, the drift tracker, the condition monitor, the evidence store), so an unwatched service
pays nothing for these routes. Source ids in paths must be accepted sources
(:class:`vision_service.sources.Sources`); sample ids are opaque and checked before any lookup.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from vision_service.api.schemas import DetectionOut, ErrorResponse, json_response
from vision_service.api.state import ServiceState, State
from vision_service.conditions import Condition
from vision_service.core.config import UPLOAD_SOURCE
from vision_service.errors import ApiError, Reason
from vision_service.evidence import DESCRIPTIONS, KINDS, Sample, current_kinds
from vision_service.evidence.rules import ONSET_KINDS
from vision_service.regimes import alerted

router = APIRouter(prefix="/v1/sources", tags=["sources"])

#: The live page's sparklines: this many seconds, one point per step.
SERIES_SECONDS = 600
SERIES_STEP = 5
_ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorResponse} for code in (400, 401, 404)}
KIND_QUERY = Query(None, description=f"Only frames of this kind: {', '.join(KINDS)}.", max_length=32)


class ConditionOut(BaseModel):
    name: str = Field(description="low_light, noisy, blurry, drift, no_detections or low_confidence.")
    alert: str = Field(description="The Prometheus alert whose expression this is (it fires after its `for:`).")
    value: float
    threshold: float = Field(description="From the thresholds file (VISION_THRESHOLDS_FILE).")
    detail: str
    signals: list[str] = Field(description="drift: the signals over their threshold.")
    since: float | None = Field(description="Unix time the service first saw it hold (None: not yet checked).")


class CameraStatusOut(BaseModel):
    status: str
    up: bool
    error: str | None
    measured_fps: float
    last_frame_at: float | None


class RecentOut(BaseModel):
    seconds: int
    frames: int
    means: dict[str, float | None] = Field(description="Mean per frame of each quality signal and detections.")
    confidence: float | None = Field(description="Mean confidence per detection.")


class DriftOut(BaseModel):
    regime: str = Field(description="The regime the source is in now (its latest frame's): day, twilight, night, all.")
    window_size: int = Field(description="Frames of that regime in the window.")
    baseline: bool = Field(description="The source's baseline has a reference for that regime (scores need one).")
    alerted: bool = Field(description="Drift in that regime is alerted on (not in twilight, a transition).")
    scores: dict[str, dict[str, float]] = Field(description="signal -> {psi, ks}.")


class SourceOut(BaseModel):
    id: str
    kind: Literal["upload", "configured", "camera"]
    url: str
    samples_url: str
    camera: CameraStatusOut | None
    last_frame_at: float | None = Field(description="Unix time of the source's last processed frame.")
    recent: RecentOut = Field(description="The last 5 minutes (what the alerts' 5-minute means read).")
    drift: DriftOut | None
    conditions: list[ConditionOut]
    samples: int = Field(description="Evidence frames that stand for a kind now.")


class SourceList(BaseModel):
    sources: list[SourceOut]
    thresholds: dict[str, float] = Field(description="The thresholds the conditions compare against.")
    evidence: bool = Field(description="Evidence frames are kept (VISION_EVIDENCE_ENABLED).")


class Series(BaseModel):
    seconds: int
    step: int
    t: list[float] = Field(description="Start of each step, Unix seconds.")
    values: dict[str, list[float | None]] = Field(description="Mean per step of each signal; None without frames.")


class SourceDetail(SourceOut):
    last: dict[str, float] | None = Field(description="Quality signals of the last processed frame.")
    series: Series


class SampleOut(BaseModel):
    id: str
    kinds: list[str] = Field(description="What the frame is evidence of now (see 'descriptions').")
    time: float = Field(description="Unix time the frame was processed.")
    image_url: str
    width: int
    height: int
    image_width: int
    image_height: int
    bytes: int
    quality: dict[str, float]
    mean_confidence: float | None
    detections: list[DetectionOut] = Field(description="Boxes in the frame's own pixels (width x height).")
    conditions: list[str] = Field(description="Conditions holding for the source when the frame was kept.")


class SampleList(BaseModel):
    source: str
    evidence: bool
    descriptions: dict[str, str] = Field(description="What each kind of evidence frame is.")
    onsets: list[str] = Field(description="The kinds that are the moment a condition began.")
    samples: list[SampleOut]


def source_url(source: str) -> str:
    return f"/v1/sources/{source}"


def image_url(sample: Sample) -> str:
    return f"/v1/sources/{sample.source}/samples/{sample.id}.jpg"


def _accepted(state: ServiceState, source_id: str) -> str:
    """The source id named by a path when it is an accepted source, or 404."""
    if source_id not in state.sources:
        raise ApiError(Reason.SOURCE_NOT_FOUND, f"no source {source_id[:64]!r}; see /v1/sources")
    return source_id


def _condition(c: Condition, since: dict[str, float]) -> ConditionOut:
    return ConditionOut(
        name=c.name,
        alert=c.alert,
        value=c.value,
        threshold=c.threshold,
        detail=c.detail,
        signals=list(c.signals),
        since=since.get(c.name),
    )


def _current_samples(state: ServiceState, source: str) -> list[tuple[Sample, tuple[str, ...]]]:
    if state.evidence is None:
        return []
    samples = state.evidence.store.samples(source)
    kinds = current_kinds(samples)
    return [(s, kinds[s.id]) for s in samples if s.id in kinds]


def _source(state: ServiceState, source: str, camera: dict[str, Any] | None) -> dict[str, Any]:
    view = state.conditions.view(source)
    recent, drift = view.short, view.drift
    baseline = state.drift.baseline(source)
    return {
        "id": source,
        "kind": "upload" if source == UPLOAD_SOURCE else "camera" if camera is not None else "configured",
        "url": source_url(source),
        "samples_url": f"{source_url(source)}/samples",
        "camera": None if camera is None else CameraStatusOut.model_validate(camera),
        "last_frame_at": recent.last_at,
        "recent": RecentOut(
            seconds=recent.seconds, frames=recent.frames, means=recent.means, confidence=recent.confidence
        ),
        "drift": None
        if drift is None
        else DriftOut(
            regime=drift.regime,
            window_size=drift.window_size,
            baseline=baseline is not None and drift.regime in baseline.regimes,
            alerted=alerted(drift.regime),
            scores=_scores(drift.scores),
        ),
        "conditions": [_condition(c, view.since) for c in view.holding],
        "samples": len(_current_samples(state, source)),
    }


def _scores(scores: Any) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for (signal, test), value in sorted(scores.items()):
        out.setdefault(signal, {})[test] = round(float(value), 5)
    return out


def _list(state: ServiceState) -> SourceList:
    cameras = {view["id"]: view for view in state.cameras.list()}
    return SourceList(
        sources=[SourceOut.model_validate(_source(state, s, cameras.get(s))) for s in state.sources.ids()],
        thresholds=state.conditions.thresholds.as_dict(),
        evidence=state.evidence is not None,
    )


def _camera(state: ServiceState, source: str) -> dict[str, Any] | None:
    return state.cameras.get(source) if source in state.cameras.ids() else None


def _detail(state: ServiceState, source: str) -> SourceDetail:
    last = state.history.last(source)
    series = state.history.series(source, seconds=SERIES_SECONDS, step=SERIES_STEP)
    return SourceDetail.model_validate(
        {
            **_source(state, source, _camera(state, source)),
            "last": None if last is None else last[0].quality.as_dict(),
            "series": {"seconds": SERIES_SECONDS, "step": SERIES_STEP, "t": series.pop("t"), "values": series},
        }
    )


def _samples(state: ServiceState, source: str, kind: str | None) -> SampleList:
    out = []
    for sample, kinds in _current_samples(state, source):
        if kind is not None and kind not in kinds:
            continue
        out.append(
            SampleOut(
                id=sample.id,
                kinds=list(kinds),
                time=sample.time,
                image_url=image_url(sample),
                width=sample.width,
                height=sample.height,
                image_width=sample.image_width,
                image_height=sample.image_height,
                bytes=sample.bytes,
                quality=dict(sample.quality),
                mean_confidence=sample.mean_confidence,
                detections=[DetectionOut(**d) for d in sample.detections],
                conditions=list(sample.conditions),
            )
        )
    return SampleList(
        source=source,
        evidence=state.evidence is not None,
        descriptions=DESCRIPTIONS,
        onsets=list(ONSET_KINDS),
        samples=out,
    )


@router.get("", response_model=SourceList, responses=_ERRORS, summary="Every source: signals, drift, conditions")
async def list_sources(state: State) -> Response:
    return json_response(await run_in_threadpool(_list, state))


@router.get(
    "/{source_id}",
    response_model=SourceDetail,
    responses=_ERRORS,
    summary="One source: signals, drift, conditions and the last 10 minutes as series",
)
async def get_source(source_id: str, state: State) -> Response:
    source = _accepted(state, source_id)
    return json_response(await run_in_threadpool(_detail, state, source))


@router.get(
    "/{source_id}/samples",
    response_model=SampleList,
    responses=_ERRORS,
    summary="The source's evidence frames: numbers, detections and image URLs",
)
async def list_samples(source_id: str, state: State, kind: str | None = KIND_QUERY) -> Response:
    source = _accepted(state, source_id)
    if kind is not None and kind not in KINDS:
        raise ApiError(Reason.MALFORMED_REQUEST, f"kind must be one of {', '.join(KINDS)}")
    return json_response(await run_in_threadpool(_samples, state, source, kind))


@router.get(
    "/{source_id}/samples/{sample_id}.jpg",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}, **_ERRORS},
    summary="An evidence frame as JPEG",
)
async def sample_image(source_id: str, sample_id: str, state: State) -> Response:
    source = _accepted(state, source_id)
    if state.evidence is None:
        raise ApiError(Reason.SAMPLE_NOT_FOUND, "no such evidence frame (evidence is off)")
    jpeg = await run_in_threadpool(state.evidence.store.image, source, sample_id)  # None for a malformed id
    if jpeg is None:
        raise ApiError(Reason.SAMPLE_NOT_FOUND, "no such evidence frame (it may have been replaced or expired)")
    # A sample never changes under its id: browsers may keep it (privately: it is behind the key).
    headers = {"Cache-Control": "private, max-age=86400, immutable", "X-Content-Type-Options": "nosniff"}
    return Response(jpeg, media_type="image/jpeg", headers=headers)
