"""Micro-batching: frames of concurrent callers share detector calls, and each caller gets its own answer."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import engine_for, pipeline_on
from tests.streams import photographs
from vision_service.cameras.reader import LatestFrame
from vision_service.cameras.scheduler import Feed, Scheduler
from vision_service.cameras.stats import CameraStats
from vision_service.engine import Engine
from vision_service.errors import ImageRejected, Reason
from vision_service.measurement import Detection, Measurement
from vision_service.metrics import Metrics
from vision_service.pipeline import Pipeline

# Long enough that frames submitted together surely meet in one call, however busy the CPU is.
GENEROUS_WAIT = 0.5
RESULT_TIMEOUT = 300  # seconds: only guards against a hang, never a speed claim


@pytest.fixture(scope="module")
def engine(model_path: str) -> Engine[Any]:
    return engine_for(model_path)


def alone(engine: Engine[Any], image: np.ndarray) -> list[Detection]:
    """The detections of ``image`` run on its own."""
    (result,) = engine.run([engine.from_host(image, source="alone")]).results
    return result.detections


def batch_sizes(metrics_text: str) -> tuple[float, float, float]:
    """(frames, detector calls, calls of exactly one frame) from vision_batch_size."""
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(metrics_text):
        if family.name == "vision_batch_size":
            for sample in family.samples:
                if sample.name.endswith("_bucket"):
                    if sample.labels["le"] == "1.0":
                        values["single"] = sample.value
                else:
                    values[sample.name.rsplit("_", 1)[1]] = sample.value
    return values["sum"], values["count"], values["single"]


def assert_same_detections(got: list[Detection], expected: list[Detection]) -> None:
    """Same classes in the same order, boxes within 2 px and confidences within 0.01."""
    assert [d.class_name for d in got] == [d.class_name for d in expected]
    for a, b in zip(got, expected, strict=True):
        assert np.allclose(a.box_xyxy, b.box_xyxy, atol=2.0), (a, b)
        assert a.confidence == pytest.approx(b.confidence, abs=0.01)


def test_concurrent_single_image_requests_share_detector_calls(client: TestClient, bus_bytes: bytes) -> None:
    before = batch_sizes(client.get("/metrics").text)
    statuses: list[int] = []
    counts: list[int] = []
    start = threading.Barrier(8)

    def one_request() -> None:
        start.wait()
        response = client.post("/v1/detect", content=bus_bytes, headers={"content-type": "image/jpeg"})
        statuses.append(response.status_code)
        counts.append(response.json()["count"])

    threads = [threading.Thread(target=one_request) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    after = batch_sizes(client.get("/metrics").text)
    frames, calls, single_calls = (a - b for a, b in zip(after, before, strict=True))
    assert statuses == [200] * 8
    assert len(set(counts)) == 1  # the same image gives the same answer, batched or not
    assert frames == 8  # every frame counted once, in some call
    assert calls < 8 and single_calls < calls  # ... and some calls carried several requests' frames


def test_each_caller_gets_the_detections_of_its_own_image(engine: Engine[Any]) -> None:
    sizes: list[int] = []
    pipeline = pipeline_on(engine, batch_sinks=[sizes.append], max_batch_wait=GENEROUS_WAIT)
    images = photographs()  # four different photographs of one size
    results: dict[int, Measurement] = {}
    start = threading.Barrier(len(images))

    def caller(index: int) -> None:
        with pipeline.admit(1):  # as the routes do: admitted frames are what the batcher waits for
            start.wait()
            (future,) = pipeline.submit([engine.from_host(images[index], source=f"caller-{index}")])
            results[index] = future.result(RESULT_TIMEOUT)

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(len(images))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    pipeline.close()
    assert max(sizes) > 1 and sum(sizes) == len(images)
    for index, image in enumerate(images):
        assert results[index].source == f"caller-{index}"
        assert_same_detections(results[index].detections, alone(engine, image))
    assert results[0].detections, "the bus photograph has detections to route"


def test_a_lone_frame_does_not_wait_for_a_full_batch(engine: Engine[Any], bus_bgr: np.ndarray) -> None:
    sizes: list[int] = []
    pipeline = pipeline_on(engine, batch_sinks=[sizes.append], max_batch=16, max_batch_wait=0.05)
    (future,) = pipeline.submit([engine.from_host(bus_bgr, source="upload")])
    measurement = future.result(timeout=RESULT_TIMEOUT)  # 15 more frames never come
    pipeline.close()
    assert sizes == [1]
    assert (measurement.source, measurement.width, measurement.height) == ("upload", 810, 1080)


def test_a_lone_request_is_not_held_back_waiting_for_company(engine: Engine[Any], bus_bgr: np.ndarray) -> None:
    # A wait twice the result timeout: the frame can only come back in time if the batcher sees
    # that no other admitted frame is on its way (one CPU inference takes well under a second).
    sizes: list[int] = []
    pipeline = pipeline_on(engine, batch_sinks=[sizes.append], max_batch_wait=120)
    for _ in range(2):  # sequential requests, as a batch-1 latency client sends them
        with pipeline.admit(1):
            (future,) = pipeline.submit([engine.from_host(bus_bgr, source="upload")])
            future.result(timeout=60)
    pipeline.close()
    assert sizes == [1, 1]


def test_a_frame_still_being_decoded_is_waited_for(engine: Engine[Any], bus_bgr: np.ndarray) -> None:
    sizes: list[int] = []
    pipeline = pipeline_on(engine, batch_sinks=[sizes.append], max_batch_wait=RESULT_TIMEOUT)
    with pipeline.admit(2):  # two frames admitted; the second one's caller is still decoding it
        (first,) = pipeline.submit([engine.from_host(bus_bgr, source="cam-a")])
        time.sleep(0.2)  # the decode
        (second,) = pipeline.submit([engine.from_host(bus_bgr, source="cam-b")])
        results = [first.result(timeout=RESULT_TIMEOUT), second.result(timeout=RESULT_TIMEOUT)]
    pipeline.close()
    assert sizes == [2]  # one detector call for both, though the second frame came later
    assert [m.source for m in results] == ["cam-a", "cam-b"]


def test_shutdown_finishes_every_queued_frame_then_refuses(engine: Engine[Any], bus_bgr: np.ndarray) -> None:
    sizes: list[int] = []
    pipeline = pipeline_on(engine, batch_sinks=[sizes.append], max_batch=2, max_batch_wait=0.0)
    futures: list[Future[Measurement]] = []
    for index in range(5):
        futures += pipeline.submit([engine.from_host(bus_bgr, source=f"frame-{index}")])
    pipeline.close()  # returns once the queue is drained
    assert all(f.done() and not f.cancelled() for f in futures)
    assert [f.result().source for f in futures] == [f"frame-{i}" for i in range(5)]
    assert sum(sizes) == 5 and max(sizes) <= 2
    with pytest.raises(ImageRejected) as refused:
        pipeline.submit([engine.from_host(bus_bgr, source="late")])
    assert refused.value.reason is Reason.NOT_READY


def one_round_of_three_cameras(pipeline: Pipeline) -> list[Feed]:
    """Three cameras with a photograph waiting each, taken by one scheduler round."""
    metrics = Metrics()
    feeds = [Feed(f"cam-{i}", LatestFrame(), CameraStats(f"cam-{i}", metrics)) for i in range(3)]
    scheduler = Scheduler(pipeline, lambda: feeds)
    for feed, photo in zip(feeds, photographs(), strict=False):
        feed.slot.put(photo)
    scheduler.process_round(scheduler.next_round())
    return feeds


def test_a_round_of_camera_frames_is_one_detector_call(engine: Engine[Any]) -> None:
    sizes: list[int] = []
    pipeline = pipeline_on(engine, batch_sinks=[sizes.append], max_pending=8, max_batch_wait=GENEROUS_WAIT)
    feeds = one_round_of_three_cameras(pipeline)
    pipeline.close()
    assert sizes == [3]
    assert [feed.stats.counts["processed"] for feed in feeds] == [1, 1, 1]
    assert pipeline.pending == 0
    for feed in feeds:
        feed.stats.close()


def test_a_round_larger_than_the_free_admission_drops_the_rest(engine: Engine[Any]) -> None:
    pipeline = pipeline_on(engine, max_pending=2)
    feeds = one_round_of_three_cameras(pipeline)
    pipeline.close()
    outcomes = [(feed.stats.counts["processed"], feed.stats.counts["dropped"]) for feed in feeds]
    assert outcomes == [(1, 0), (1, 0), (0, 1)]
    for feed in feeds:
        feed.stats.close()
