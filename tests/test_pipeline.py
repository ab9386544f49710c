"""The pipeline: readiness and bounded admission in front of the engine, and one record per processed frame."""

from __future__ import annotations

import asyncio
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, cast, overload

import numpy as np
import pytest

from tests.conftest import encode_jpeg, engine_for, pipeline_on
from tests.infra import vision_service
from vision_service import pipeline as pipeline_module
from vision_service.api.routes import detect as detect_route
from vision_service.engine import Engine, Frame
from vision_service.errors import ImageRejected, Reason
from vision_service.evidence import EvidenceKeeper, MemoryStore
from vision_service.measurement import Measurement
from vision_service.pipeline import Pipeline, trim_heap

# Long enough that frames submitted together surely meet in one engine run, however busy the CPU is.
GENEROUS_WAIT = 0.5
RESULT_TIMEOUT = 300  # seconds: only guards against a hang, never a speed claim


@pytest.fixture(scope="module")
def engine() -> Engine[Any]:
    return engine_for("yolo11n.yaml", image_size=320)


def test_nothing_is_admitted_until_the_model_is_loaded(engine: Engine[Any]) -> None:
    pipeline = Pipeline(
        max_pending=4, max_batch=4, max_batch_wait=0, max_request_pixels=10**8, max_pixels_in_flight=10**8
    )
    with pytest.raises(ImageRejected) as loading, pipeline.admit(1):
        pass
    assert loading.value.reason is Reason.NOT_READY and "loading" in loading.value.detail
    pipeline.failed("model file not found: /models/gone.pt")
    with pytest.raises(ImageRejected) as failed, pipeline.admit(1):
        pass
    assert failed.value.detail == "model file not found: /models/gone.pt"
    pipeline.use(engine)
    with pipeline.admit(1) as admitted:
        assert admitted is engine and pipeline.ready and pipeline.load_error is None


def test_admission_is_bounded_and_released(engine: Engine[Any]) -> None:
    pipeline = pipeline_on(engine, max_pending=2)
    with pipeline.admit(2):
        assert pipeline.pending == 2
        with pytest.raises(ImageRejected) as info, pipeline.admit(1):
            pass
        assert info.value.reason is Reason.OVERLOADED
    assert pipeline.pending == 0
    with pipeline.admit(1):
        assert pipeline.pending == 1


def test_decoded_pixels_are_bounded_per_request_and_for_the_process(engine: Engine[Any]) -> None:
    pipeline = pipeline_on(engine, max_request_pixels=50, max_pixels_in_flight=100)
    with pytest.raises(ImageRejected) as request, pipeline.admit(2, pixels=51):
        pass
    assert request.value.reason is Reason.TOO_MANY_PIXELS and request.value.status_code == 413
    with pipeline.admit(1, pixels=50), pipeline.admit(1, pixels=50):
        assert pipeline.pixels_in_flight == 100
        with pytest.raises(ImageRejected) as full, pipeline.admit(1, pixels=1):
            pass
        assert full.value.reason is Reason.PIXEL_BUDGET and full.value.status_code == 503
    assert (pipeline.pending, pipeline.pixels_in_flight) == (0, 0)


class _ReadImages(Sequence[bytes]):
    """An upload's images that note in ``events`` each image the engine reads to decode it."""

    def __init__(self, images: Sequence[bytes], events: list[str]) -> None:
        self._images = images
        self._events = events

    def __len__(self) -> int:
        return len(self._images)

    @overload
    def __getitem__(self, index: int) -> bytes: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[bytes]: ...
    def __getitem__(self, index: int | slice) -> bytes | Sequence[bytes]:
        if isinstance(index, slice):
            return self._images[index]
        if 0 <= index < len(self._images):
            self._events.append(f"read {index}")
        return self._images[index]


class _RecordingEngine:
    """The real engine, told each upload's images through :class:`_ReadImages`; everything else passes through."""

    def __init__(self, engine: Engine[Any], events: list[str]) -> None:
        self._engine = engine
        self._events = events

    def decode(self, images: Sequence[bytes], *, source: str) -> Iterator[Frame[Any] | ImageRejected]:
        return self._engine.decode(_ReadImages(images, self._events), source=source)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)


def test_an_upload_is_admitted_from_its_headers_and_decoded_one_image_after_the_other(
    engine: Engine[Any], bus_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    recording: Engine[Any] = cast("Engine[Any]", _RecordingEngine(engine, events))
    pipeline = pipeline_on(recording, max_request_pixels=3 * 810 * 1080)
    submit = pipeline.submit

    def handed_on(frames: Sequence[Frame[Any]]) -> list[Future[Measurement]]:
        events.append(f"submit {len(frames)}")
        return submit(frames)

    monkeypatch.setattr(pipeline, "submit", handed_on)
    admission, outcomes = pipeline.submit_images([bus_bytes, b"not an image", bus_bytes], "cam-a")
    # Lazy: each image is read (decoded) only once the frame before it was handed on, one at a time.
    assert events == ["read 0", "submit 1", "read 1", "read 2", "submit 1"]
    assert pipeline.pixels_in_flight == 2 * 810 * 1080  # counted from the JPEG headers; 0 for the bad one
    first, bad, last = outcomes
    assert isinstance(bad, ImageRejected) and bad.reason is Reason.NOT_AN_IMAGE
    assert not isinstance(first, ImageRejected) and not isinstance(last, ImageRejected)
    assert first.result(RESULT_TIMEOUT).source == last.result(RESULT_TIMEOUT).source == "cam-a"
    admission.release()
    admission.release()  # once only
    assert (pipeline.pending, pipeline.pixels_in_flight) == (0, 0)
    with pytest.raises(ImageRejected) as too_many:
        pipeline.submit_images([bus_bytes] * 4, "cam-a")
    assert too_many.value.reason is Reason.TOO_MANY_PIXELS and pipeline.pending == 0


def test_only_a_large_upload_asks_for_a_heap_trim_and_releasing_never_trims(
    engine: Engine[Any], bus_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    trims: list[str] = []
    monkeypatch.setattr(pipeline_module, "trim_heap", lambda: trims.append("trim"))
    monkeypatch.setattr(pipeline_module, "TRIM_AFTER_PIXELS", 2 * 810 * 1080)
    pipeline = pipeline_on(engine)
    with pipeline.admit(1, pixels=10 * 810 * 1080):  # a camera's frame, however large
        pass
    small, (one,) = pipeline.submit_images([bus_bytes], "cam-a")
    large, (first, second) = pipeline.submit_images([bus_bytes, bus_bytes], "cam-a")
    for future in (one, first, second):
        assert not isinstance(future, ImageRejected)
        future.result(RESULT_TIMEOUT)
    small.release()
    large.release()
    assert (small.trim_after, large.trim_after) == (False, True)  # the route trims off the event loop
    assert trims == []  # never on release: camera frames and the event loop never trim
    trim_heap()  # the real malloc_trim, loaded once at import


def test_the_heap_trim_is_a_no_op_without_glibcs_malloc_trim(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_libc(name: str) -> object:
        raise OSError(f"{name}: cannot open shared object file")

    class Musl:  # a libc without malloc_trim
        def __getattr__(self, name: str) -> object:
            raise AttributeError(name)

    monkeypatch.setattr(pipeline_module.ctypes, "CDLL", no_libc)
    assert pipeline_module._load_malloc_trim() is None
    monkeypatch.setattr(pipeline_module.ctypes, "CDLL", lambda name: Musl())
    assert pipeline_module._load_malloc_trim() is None
    monkeypatch.setattr(pipeline_module, "_MALLOC_TRIM", None)
    trim_heap()  # nothing to trim, nothing raised


def test_the_detect_route_trims_the_heap_after_a_large_upload_in_a_worker_thread(
    client: Any, bus_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_the_loop: list[bool] = []

    def trim() -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            on_the_loop.append(False)
        else:
            on_the_loop.append(True)

    monkeypatch.setattr(detect_route, "trim_heap", trim)
    monkeypatch.setattr(pipeline_module, "TRIM_AFTER_PIXELS", 2 * 810 * 1080)
    headers = {"content-type": "image/jpeg"}
    assert client.post("/v1/detect", content=bus_bytes, headers=headers).status_code == 200
    assert on_the_loop == []  # below the threshold: no trim
    body = {"image": ("a.jpg", bus_bytes, "image/jpeg")}
    files = [("image", body["image"]), ("image", body["image"])]
    assert client.post("/v1/detect/batch", files=files).status_code == 200
    assert on_the_loop == [False]  # once, after the upload, in a worker thread


def test_every_frame_reaches_every_sink_with_its_source(
    engine: Engine[Any], bus_bgr: np.ndarray, zidane_bgr: np.ndarray
) -> None:
    seen: list[Measurement] = []
    pipeline = pipeline_on(engine, sinks=[seen.append], max_batch_wait=GENEROUS_WAIT)
    frames = [engine.from_host(bus_bgr, source="cam-a"), engine.from_host(zidane_bgr, source="cam-b")]
    out = [f.result(RESULT_TIMEOUT) for f in pipeline.submit(frames)]
    pipeline.close()
    assert [m.source for m in out] == ["cam-a", "cam-b"] == [m.source for m in seen]
    assert (out[0].width, out[0].height) == (810, 1080)
    assert out[0].quality.brightness != out[1].quality.brightness
    assert out[0].device == "cpu" and out[0].total_seconds >= out[0].times.inference > 0
    # The engine's scene thumbnail travels with the measurement (camera health reads it).
    assert out[0].scene is not None and out[0].scene.shape == (64, 48)


def test_a_sink_that_fails_once_still_records_each_frame_exactly_once(
    engine: Engine[Any], bus_bgr: np.ndarray, zidane_bgr: np.ndarray
) -> None:
    recorded: list[str] = []
    flaky_calls: list[str] = []
    sizes: list[int] = []

    def flaky(m: Measurement) -> None:  # a sink with a bug that shows once
        flaky_calls.append(m.source)
        if len(flaky_calls) == 1:
            raise RuntimeError("sink bug")

    pipeline = pipeline_on(
        engine, sinks=[lambda m: recorded.append(m.source), flaky], batch_sinks=[sizes.append], max_batch_wait=0.5
    )
    with pipeline.admit(2):  # both frames are on their way: the batcher waits for the second
        futures = pipeline.submit([engine.from_host(bus_bgr, source="cam-a")])
        futures += pipeline.submit([engine.from_host(zidane_bgr, source="cam-b")])
        results = [f.result(RESULT_TIMEOUT) for f in futures]
    pipeline.close()
    assert [m.source for m in results] == ["cam-a", "cam-b"]  # both callers answered
    assert sorted(recorded) == ["cam-a", "cam-b"]  # the other sink saw each frame once
    assert sorted(flaky_calls) == ["cam-a", "cam-b"]  # and the failing sink was not called again
    assert sum(sizes) == 2  # vision_batch_size: the frames of the one run


def test_a_frame_that_fails_in_a_batch_is_not_recorded_and_the_others_once(
    engine: Engine[Any], bus_bgr: np.ndarray
) -> None:
    recorded: list[str] = []
    sizes: list[int] = []
    pipeline = pipeline_on(engine, sinks=[lambda m: recorded.append(m.source)], batch_sinks=[sizes.append])
    # Not uint8: quality analysis refuses it, which fails the batch as a whole.
    broken = Frame(np.zeros((480, 640, 3), dtype=np.float64), 640, 480, "cam-b")
    frames = [engine.from_host(bus_bgr, source="cam-a"), broken, engine.from_host(bus_bgr, source="cam-c")]
    with pipeline.admit(3):
        good, bad, also_good = pipeline.submit(frames)
        with pytest.raises(ValueError, match="uint8"):
            bad.result(RESULT_TIMEOUT)
        a, c = good.result(RESULT_TIMEOUT), also_good.result(RESULT_TIMEOUT)
    pipeline.close()
    assert (a.source, c.source) == ("cam-a", "cam-c")
    assert sorted(recorded) == ["cam-a", "cam-c"]  # once each; the failed frame reached no sink
    assert sum(sizes) == 2  # only the forward passes of runs that succeeded are counted
    assert [d.class_name for d in a.detections] == [d.class_name for d in c.detections]


def test_saturated_service_answers_503_with_retry_after(tmp_path: Path, model_path: str, bus_bgr: np.ndarray) -> None:
    body = encode_jpeg(bus_bgr)
    statuses: list[int] = []
    retry_after: list[str | None] = []
    lock = threading.Lock()
    env = {"VISION_MAX_PENDING_FRAMES": "1"}
    with vision_service(tmp_path, model=model_path, env=env) as base:

        def client() -> None:
            for _ in range(3):
                request = urllib.request.Request(f"{base}/v1/detect", data=body, headers={"content-type": "image/jpeg"})
                try:
                    with urllib.request.urlopen(request, timeout=60) as response:
                        status, header = response.status, None
                except urllib.error.HTTPError as exc:
                    status, header = exc.code, exc.headers.get("Retry-After")
                with lock:
                    statuses.append(status)
                    retry_after.append(header)

        threads = [threading.Thread(target=client) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        metrics = urllib.request.urlopen(f"{base}/metrics").read().decode()
    assert set(statuses) <= {200, 503}
    assert 200 in statuses and 503 in statuses
    assert all(h == "1" for s, h in zip(statuses, retry_after, strict=True) if s == 503)
    assert 'reason="overloaded"' in metrics


def test_a_keeper_gets_small_copies_of_the_frames_it_wants_only(engine: Engine[Any], bus_bgr: np.ndarray) -> None:
    """Asked about every frame; the engine makes a copy only for a yes, during the record step."""
    store = MemoryStore(max_bytes=10_000_000, max_age_seconds=3600)
    keeper = EvidenceKeeper(store, max_side=200, block_frames=1000)
    recorded: list[str] = []
    pipeline = pipeline_on(engine, sinks=[lambda m: recorded.append(m.source)], keepers=[keeper])
    frames = [engine.from_host(bus_bgr, source="cam-a") for _ in range(3)]
    for frame in frames:  # one at a time: the same frame three times is kept once (nothing beats it)
        pipeline.submit([frame])[0].result(RESULT_TIMEOUT)
    pipeline.close()
    keeper.close()
    assert recorded == ["cam-a"] * 3 and keeper.decided == 1
    (kept,) = store.samples("cam-a")
    assert (kept.width, kept.height) == (810, 1080)
    assert (kept.image_width, kept.image_height) == (150, 200)
    assert set(kept.kinds) == {"latest", "darkest", "blurriest", "noisiest"}  # no detections: no confidence


def test_a_failing_keeper_fails_neither_the_frame_nor_the_sinks(engine: Engine[Any], bus_bgr: np.ndarray) -> None:
    class Broken:  # a keeper with a bug
        max_side = 100

        def wants(self, m: Measurement) -> bool:
            raise RuntimeError("keeper bug")

        def keep(self, m: Measurement, decision: Any, pixels: np.ndarray) -> None:
            raise AssertionError("never reached")

    recorded: list[str] = []
    pipeline = pipeline_on(engine, sinks=[lambda m: recorded.append(m.source)], keepers=[Broken()])
    (measured,) = [f.result(RESULT_TIMEOUT) for f in pipeline.submit([engine.from_host(bus_bgr, source="cam-a")])]
    pipeline.close()
    assert measured.source == "cam-a" and recorded == ["cam-a"]
