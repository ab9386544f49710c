"""Real camera streams on 127.0.0.1 for tests: frames from photographs, RTSP, MJPEG, video files.

* :func:`day_night_frames` builds frames from real photographs (Ultralytics' bus and zidane,
  scikit-image's astronaut and coffee), then the same scenes at night through the honest
  low-light simulation (``quality.simulate.low_light``: shot noise, read noise, gain).
* :class:`RtspServer` runs GStreamer's RTSP server (``tests/rtsp_server.py``) under Debian's
  ``/usr/bin/python3`` (the interpreter with ``gi``); it can be stopped and started again on the
  same port to simulate an outage.
* :class:`MjpegServer` runs ``ffmpeg -f mpjpeg -listen 1`` (one client).
* :func:`write_video` writes an MP4 file for file sources; :func:`street_video` is the usual one.
* :class:`StallingServer` accepts TCP connections and never sends a byte: a camera that hangs.
* :func:`camera_threads`, :func:`os_thread_count` and :func:`open_fd_count` look for leaks.
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from quality.bench import load_bgr
from quality.simulate import low_light
from tests.infra import free_port, stop_process
from vision_service.api.main import build_state
from vision_service.api.state import ServiceState
from vision_service.cameras.manager import CameraManager
from vision_service.core.config import Settings

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
        load_bgr("bus.jpg"),
        load_bgr("zidane.jpg"),
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
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (width, height))
    assert writer.isOpened(), "OpenCV cannot write mp4v"
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def street_video(path: Path) -> Path:
    """Two seconds of street photographs (people, a bus) at 10 fps: a camera with ``loop: true``."""
    bus, zidane = photographs()[:2]
    return write_video(path, [bus] * 10 + [zidane] * 10, fps=10)


class RtspServer:
    """GStreamer's RTSP server streaming a folder of JPEGs as H.264 at ``rtsp://127.0.0.1:PORT/stream``.

    ``freeze=True`` serves a frozen camera: the first frame's decoded buffer, pushed again and
    again (GStreamer's ``imagefreeze``) while the stream keeps its frame rate.
    """

    def __init__(
        self,
        frames: Path,
        log: Path,
        *,
        fps: int = 5,
        user: str | None = None,
        password: str | None = None,
        freeze: bool = False,
    ) -> None:
        self.frames = frames
        self.freeze = freeze
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
        if self.freeze:
            cmd.append("--freeze")
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
        stop_process(proc)
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
        stop_process(proc)


class StallingServer:
    """A TCP server on 127.0.0.1 that accepts every connection and never sends a byte.

    A camera (or a proxy in front of one) that hangs: the TCP handshake succeeds, then nothing.
    Accepted connections stay open until :meth:`stop`; :attr:`accepted` counts them, so a test can
    tell a client that keeps retrying from one that gave up. Use as a context manager.
    """

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = int(self._listener.getsockname()[1])
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="stalling-server", daemon=True)

    def url(self, scheme: str, path: str) -> str:
        return f"{scheme}://127.0.0.1:{self.port}/{path}"

    @property
    def accepted(self) -> int:
        with self._lock:
            return len(self._connections)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()
        with self._lock:
            for connection in self._connections:
                connection.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            with self._lock:
                self._connections.append(connection)  # kept open, never written to

    def __enter__(self) -> StallingServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def camera_threads() -> list[str]:
    """Names of the live threads of the camera package: readers (``camera-<id>``) and ``camera-scheduler``."""
    return sorted(t.name for t in threading.enumerate() if t.name.startswith("camera-"))


def os_thread_count() -> int:
    """Threads of this process as the kernel sees them: FFmpeg's, OpenCV's and torch's included."""
    return len(os.listdir("/proc/self/task"))


def open_fd_count() -> int:
    """Open file descriptors of this process (files, sockets, pipes)."""
    return len(os.listdir("/proc/self/fd"))


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


def ready_state(settings: Settings) -> ServiceState:
    """The service's state with its real model loaded: camera frames go through detection, as in production."""
    state = build_state(settings)
    state.load_model()
    assert state.pipeline.ready, state.pipeline.load_error
    return state


@contextmanager
def running_manager(state: ServiceState, **options: Any) -> Iterator[CameraManager]:
    """A started camera manager on ``state``; on exit every camera is removed and the manager stopped.

    Cameras added to it may read the test videos under the temporary folder (``local_dirs``).
    """
    options.setdefault("local_dirs", [Path(tempfile.gettempdir())])
    manager = CameraManager(state.pipeline, state.metrics, state.sources, **options)
    manager.start()
    yield manager
    for camera_id in manager.ids():
        manager.remove(camera_id)
    manager.stop()


class HttpCameraServer:
    """An HTTP(S) camera on 127.0.0.1 in this process: an MJPEG stream at ``/video.mjpg`` and, for
    HLS, a playlist at ``/live.m3u8`` whose segments are missing (FFmpeg then quotes their URLs).

    With ``certificate`` it speaks TLS with that PEM certificate (key beside it, ``.key``). With
    ``password`` it answers the first request 401 with a Basic challenge, as cameras do, so a
    client sends its credentials only when asked. ``requests`` records every request that
    reached HTTP: its path and its Authorization header.
    """

    PLAYLIST = b"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\nseg0.ts\n#EXTINF:2.0,\nseg1.ts\n"

    def __init__(self, *, certificate: Path | None = None, password: str | None = None) -> None:
        import ssl
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        server = self
        self.requests: list[tuple[str, str | None]] = []
        self.password = password
        frame = cv2.imencode(".jpg", photographs((320, 240))[0])[1].tobytes()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                authorization = self.headers.get("Authorization")
                server.requests.append((self.path, authorization))
                if server.password is not None and authorization is None:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="camera"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif self.path.endswith(".m3u8"):
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(server.PLAYLIST)))
                    self.end_headers()
                    self.wfile.write(server.PLAYLIST)
                elif self.path.endswith(".mjpg"):
                    self.send_response(200)
                    self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                    self.end_headers()
                    self._stream(frame)
                else:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()

            def _stream(self, jpeg: bytes) -> None:
                part = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg) + jpeg + b"\r\n"
                try:
                    for _ in range(600):
                        self.wfile.write(part)
                        time.sleep(0.1)
                except OSError:
                    pass  # the camera client went away

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        if certificate is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(certificate, certificate.with_suffix(".key"))
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.scheme = "https" if certificate is not None else "http"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, path: str, *, user: str | None = None) -> str:
        auth = f"{user}:{self.password}@" if user is not None else ""
        return f"{self.scheme}://{auth}127.0.0.1:{self._server.server_address[1]}/{path}"

    def __enter__(self) -> HttpCameraServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def self_signed_certificate(folder: Path, name: str, *, san: str) -> Path:
    """A self-signed certificate ``name.crt`` (key ``name.key``) for ``san`` (``DNS:host``, ``IP:addr``), by openssl."""
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout", str(key),
         "-out", str(cert), "-subj", f"/CN={name}", "-addext", f"subjectAltName={san}"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert
