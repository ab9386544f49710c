"""Opening a camera stream with FFmpeg (through PyAV): only what a camera needs, bounded in time and size.

Why PyAV and not OpenCV's capture: OpenCV hands FFmpeg one set of options for the whole process
(``OPENCV_FFMPEG_CAPTURE_OPTIONS``) and lets FFmpeg print to the process's stderr. A camera
service needs options per stream and a say over FFmpeg's log:

* **protocols and demuxers per source kind** (FFmpeg's ``protocol_whitelist`` and
  ``format_whitelist``): an RTSP camera may use RTSP/RTP over TCP, UDP or TLS and nothing else;
  an HTTP camera HTTP(S), TLS and the demuxers of MJPEG, HLS and common containers, never
  ``file:``; a local video file the ``file`` protocol and video containers only, never FFmpeg's
  ``tty`` demuxer (which renders a text file as video), ``image2`` (still images), ``concat`` or
  a local HLS playlist (which could name other local files);
* **TLS verification** for ``https://`` and ``rtsps://``: the certificate chain against a CA file
  (``VISION_CAMERA_CA_FILE``, by default the system's bundle) and the host name, before any
  request (and so any credential) is sent; a camera may opt out with ``tls_verify: false``;
* **timeouts**: opening and each read are bounded (PyAV's interrupt callback);
* **FFmpeg's log** goes to Python logging (logger ``vision_service.cameras.ffmpeg``), at warning
  level, with every credential masked (:class:`RedactingHandler`): FFmpeg quotes URLs, user and
  password included, in its own messages (``[hls] Error when loading first segment 'http://u:p@…'``).

Frame size: :func:`frame_pixels_ok` refuses a stream whose frames are larger than
``VISION_MAX_IMAGE_PIXELS`` from its codec parameters, before any frame is decoded.
"""

from __future__ import annotations

import itertools
import logging
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vision_service.cameras.url import MASK, CameraSource, mask_urls_in, secrets_of

log = logging.getLogger(__name__)

# FFmpeg protocol and demuxer names a camera may use, per source kind (see the module docstring).
RTSP_PROTOCOLS = "rtsp,rtsps,rtp,srtp,udp,tcp,tls"
RTSP_FORMATS = "rtsp,rtp,sdp,mpegts"
HTTP_PROTOCOLS = "http,https,tcp,tls,crypto"
# MJPEG streams (multipart or raw), HLS and the containers its segments and recordings come in.
HTTP_FORMATS = "mpjpeg,mjpeg,hls,mpegts,mov,matroska,flv,avi,h264,hevc"
FILE_PROTOCOLS = "file"
FILE_FORMATS = "mov,matroska,avi,mpegts,flv,mjpeg,h264,hevc,mpeg"
DEVICE_FORMAT = "v4l2"
# OpenCV's former defaults: RTSP over TCP when the camera allows it, then UDP; a short probe.
COMMON_OPTIONS = {"rtsp_flags": "prefer_tcp", "analyzeduration": "1000000"}


@dataclass(frozen=True)
class StreamPolicy:
    """What every camera stream is held to: timeouts, the CA file for TLS, the largest frame."""

    timeout: float
    max_pixels: int
    ca_file: Path | None = None

    @staticmethod
    def default_ca_file() -> Path | None:
        """The system's CA bundle as OpenSSL knows it (Debian: /etc/ssl/certs/ca-certificates.crt)."""
        paths = ssl.get_default_verify_paths()
        for candidate in (paths.cafile, paths.openssl_cafile):
            if candidate and Path(candidate).is_file():
                return Path(candidate)
        return None


def ffmpeg_options(source: CameraSource, policy: StreamPolicy, *, tls_verify: bool) -> dict[str, str]:
    """The FFmpeg options of one stream: allowed protocols and demuxers, TLS verification."""
    if source.kind == "file":
        return {"protocol_whitelist": FILE_PROTOCOLS, "format_whitelist": FILE_FORMATS}
    if source.kind == "device":
        return {}
    scheme = str(source.url).split(":", 1)[0].lower()
    options = dict(COMMON_OPTIONS)
    if scheme in ("rtsp", "rtsps"):
        options.update(protocol_whitelist=RTSP_PROTOCOLS, format_whitelist=RTSP_FORMATS)
    else:
        options.update(protocol_whitelist=HTTP_PROTOCOLS, format_whitelist=HTTP_FORMATS)
    if scheme in ("https", "rtsps"):
        options["tls_verify"] = "1" if tls_verify else "0"
        if tls_verify and policy.ca_file is not None:
            options["ca_file"] = str(policy.ca_file)
    return options


def open_stream(source: CameraSource, policy: StreamPolicy, *, tls_verify: bool = True) -> Any:
    """An open ``av`` input container for ``source``; raises ``av.FFmpegError`` (or OSError) when it cannot open."""
    import av

    if source.kind == "device":
        return av.open(f"/dev/video{source.target}", format=DEVICE_FORMAT, timeout=policy.timeout)
    return av.open(
        str(source.target),
        options=ffmpeg_options(source, policy, tls_verify=tls_verify),
        timeout=(policy.timeout, policy.timeout),
    )


def frame_pixels_ok(width: int, height: int, policy: StreamPolicy) -> str | None:
    """None when a ``width`` x ``height`` frame is within the pixel limit; else why it is not."""
    if width * height <= policy.max_pixels:
        return None
    return f"frames are {width}x{height} = {width * height} pixels; the limit is {policy.max_pixels}"


# -- FFmpeg's log ---------------------------------------------------------------------------------


class Secrets:
    """Credentials of the camera readers now running, to mask wherever FFmpeg repeats them (thread-safe).

    Each reader registers its own (:meth:`add` returns the registration's token, :meth:`remove`
    takes it): a camera redefined or re-added while its old reader is still ending has two
    registrations, and the old one's removal leaves the new one's secrets masked.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens = itertools.count()
        self._by_registration: dict[int, tuple[str, ...]] = {}
        self._known: tuple[str, ...] = ()  # every registration's secrets, longest first

    def add(self, url: str) -> int:
        """Register the credentials of ``url``; return the token that :meth:`remove` takes."""
        with self._lock:
            token = next(self._tokens)
            self._by_registration[token] = tuple(secrets_of(url))
            self._update()
        return token

    def remove(self, token: int) -> None:
        with self._lock:
            if self._by_registration.pop(token, None) is not None:
                self._update()

    def _update(self) -> None:
        everything = {secret for secrets in self._by_registration.values() for secret in secrets}
        self._known = tuple(sorted(everything, key=len, reverse=True))

    def redact(self, text: str) -> str:
        """``text`` with every URL's user info masked and every known camera secret replaced by ``***``."""
        text = mask_urls_in(text)
        for secret in self._known:  # a tuple replaced whole by add and remove: no lock needed to read it
            text = text.replace(secret, MASK)
        return text


#: The credentials of every running camera reader (readers register on start, leave on stop).
SECRETS = Secrets()


class RedactingHandler(logging.Handler):
    """Takes PyAV's ``libav.*`` records, masks credentials, and passes them on as ``vision_service.cameras.ffmpeg``."""

    def __init__(self, secrets: Secrets) -> None:
        super().__init__()
        self.secrets = secrets
        self.target = logging.getLogger("vision_service.cameras.ffmpeg")

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.secrets.redact(record.getMessage())
            self.target.log(record.levelno, "[%s] %s", record.name.removeprefix("libav."), message.rstrip())
        except Exception:  # a log line must never break a reader
            self.handleError(record)


_installed = threading.Lock()
_done = False


def route_ffmpeg_log(level: int = logging.WARNING) -> None:
    """Send FFmpeg's messages at ``level`` and above through :class:`RedactingHandler` (once per process)."""
    global _done
    import av.logging

    with _installed:
        if _done:
            return
        libav = logging.getLogger("libav")
        libav.propagate = False  # only the redacted copy reaches the application's handlers
        libav.addHandler(RedactingHandler(SECRETS))
        libav.setLevel(level)
        av.logging.set_level(av.logging.WARNING if level <= logging.WARNING else av.logging.ERROR)
        _done = True
