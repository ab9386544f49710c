"""Real camera streams on 127.0.0.1 for tests: frames from photographs, RTSP, MJPEG, video files.

* :func:`day_night_frames` builds frames from real photographs (Ultralytics' bus and zidane,
  scikit-image's astronaut and coffee), then the same scenes at night through the honest
  low-light simulation (``quality.simulate.low_light``: shot noise, read noise, gain).
* :class:`RtspServer` runs GStreamer's RTSP server (``tests/rtsp_server.py``) under Debian's
  ``/usr/bin/python3`` (the interpreter with ``gi``); it can be stopped and started again on the
  same port to simulate an outage.
* :class:`MjpegServer` runs ``ffmpeg -f mpjpeg -listen 1`` (one client).
* :func:`write_video` writes an MP4 file for file sources.
"""

from __future__ import annotations

import os
import select
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
from prometheus_client.parser import text_string_to_metric_families
from ultralytics.utils import ASSETS

from quality.simulate import low_light
from tests.infra import free_port

REPO = Path(__file__).resolve().parents[1]
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's, with python3-gi and the GStreamer RTSP server
SIZE = (640, 480)


def fit(image: np.ndarray, size: tuple[int, int] = SIZE) -> np.ndarray:
    """Centre-crop to the aspect ratio of ``size`` and resize (area interpolation)."""
    width, height = size
    h, w = image.shape[:2]
    if w / h > width / height:
        new_w = round(h * width / height)
        x = (w - new_w) // 2
        image = image[:, x : x + new_w]
    else:
        new_h = round(w * height / width)
        y = (h - new_h) // 2
        image = image[y : y + new_h]
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def photographs(size: tuple[int, int] = SIZE) -> list[np.ndarray]:
    """Real photographs as BGR frames: two street scenes with people, a portrait, a still life."""
    import skimage.data

    images = [
        cv2.imread(str(ASSETS / "bus.jpg")),
        cv2.imread(str(ASSETS / "zidane.jpg")),
        np.ascontiguousarray(skimage.data.astronaut()[:, :, ::-1]),
        np.ascontiguousarray(skimage.data.coffee()[:, :, ::-1]),
    ]
    return [fit(image, size) for image in images]


def day_night_frames(
    *, frames_per_photo: int, night_light: float = 0.01, seed: int = 0, size: tuple[int, int] = SIZE
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(day, night): each photo held ``frames_per_photo`` frames; night re-shoots every frame
    with ``night_light`` of the daylight exposure (fresh sensor noise per frame)."""
    rng = np.random.default_rng(seed)
    day: list[np.ndarray] = []
    night: list[np.ndarray] = []
    for photo in photographs(size):
        day.extend([photo] * frames_per_photo)
        night.extend(low_light(photo, night_light, rng=rng) for _ in range(frames_per_photo))
    return day, night


def write_frames(folder: Path, frames: Sequence[np.ndarray]) -> Path:
    """Write ``frame-00000.jpg`` ... into ``folder`` (the RTSP and MJPEG servers loop over them)."""
    folder.mkdir(parents=True, exist_ok=True)
    for index, frame in enumerate(frames):
        ok = cv2.imwrite(str(folder / f"frame-{index:05d}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
        assert ok
    return folder


def write_video(path: Path, frames: Sequence[np.ndarray], fps: float) -> Path:
    """An MPEG-4 file with OpenCV's own encoder (no external tool)."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    assert writer.isOpened(), "OpenCV cannot write mp4v"
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


class RtspServer:
    """GStreamer's RTSP server streaming a folder of JPEGs as H.264 at ``rtsp://127.0.0.1:PORT/stream``."""

    def __init__(
        self, frames: Path, log: Path, *, fps: int = 5, user: str | None = None, password: str | None = None
    ) -> None:
        self.frames = frames
        self.log = log
        self.fps = fps
        self.user = user
        self.password = password
        self.port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    def url(self, user: str | None = None, password: str | None = None) -> str:
        auth = f"{user}:{password}@" if user is not None else ""
        return f"rtsp://{auth}127.0.0.1:{self.port}/stream"

    def start(self, timeout: float = 30) -> None:
        """Start the server (on the same port as before) and wait for its READY line."""
        cmd = [
            SYSTEM_PYTHON,
            str(REPO / "tests" / "rtsp_server.py"),
            "--frames",
            str(self.frames),
            "--port",
            str(self.port),
            "--fps",
            str(self.fps),
        ]
        if self.user is not None:
            cmd += ["--user", self.user, "--password", self.password or ""]
        deadline = time.monotonic() + timeout
        while True:
            with self.log.open("ab") as err:
                proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err)
            line = _read_line(proc, deadline)
            if line.startswith("READY"):
                self._proc = proc
                return
            proc.kill()
            proc.wait()
            # The port may linger for a moment after a stop; try again until the deadline.
            if time.monotonic() > deadline:
                raise RuntimeError(f"RTSP server did not start: {line!r}; see {self.log}")
            time.sleep(0.2)

    def stop(self) -> None:
        """Stop the server the hard way a failing camera does: its connections just close."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    def __enter__(self) -> RtspServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _read_line(proc: subprocess.Popen[bytes], deadline: float) -> str:
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    data = b""
    while b"\n" not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or proc.poll() is not None:
            break
        ready, _, _ = select.select([fd], [], [], min(remaining, 0.5))
        if ready:
            chunk = os.read(fd, 256)
            if not chunk:
                break
            data += chunk
    return data.decode(errors="replace").strip()


@contextmanager
def mjpeg_server(frames: Path, log: Path, *, fps: int = 5) -> Iterator[str]:
    """``ffmpeg`` serving the JPEGs in ``frames`` as MJPEG over HTTP, looping; yields the URL path part
    ``127.0.0.1:PORT/cam.mjpg`` (prefix the scheme and any credentials). Serves one client."""
    port = free_port()
    cmd = [
        "ffmpeg",
        "-hide_banner",
        "-loglevel",
        "error",
        "-re",
        "-stream_loop",
        "-1",
        "-framerate",
        str(fps),
        "-i",
        str(frames / "frame-%05d.jpg"),
        "-c",
        "copy",
        "-f",
        "mpjpeg",
        "-listen",
        "1",
        f"http://127.0.0.1:{port}/cam.mjpg",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        yield f"127.0.0.1:{port}/cam.mjpg"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse_samples(text: str) -> Samples:
    """Prometheus text exposition as {(sample name, sorted labels): value}."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def sample(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))
