"""Camera URLs: which ones are accepted, what OpenCV is handed, and how to show them without secrets.

Accepted forms:

* ``rtsp://``, ``rtsps://``, ``http://``, ``https://`` URLs with a host (network streams);
* a local video file: an absolute path, a path relative to a base folder, or ``file:///abs/path``;
* a device index such as ``0`` (``/dev/video0``).

Who may name a local source is a :class:`LocalAccess`: the operator's camera file may name any
local file or device (:data:`ANY_LOCAL`); a camera added over the API may name only video files
inside the folders the operator listed (``VISION_LOCAL_SOURCE_DIRS``), checked after symlinks
and ``..`` are resolved, and no device. Every other scheme (``udp:``, ``concat:``, ``subfile:``,
``data:`` ...) is refused: FFmpeg would happily read local files or open sockets through them.
A URL must be text that both a YAML file and a JSON answer can hold (valid UTF-8, no control
characters).

Credentials never leave this module in clear: :func:`mask_url` shows ``rtsp://user:***@host/...``
and hides secret-looking query values; :func:`mask_urls_in` does so for every URL quoted in a
text; :func:`redact` scrubs a URL's secrets out of any text (an exception message, a log line).
Error messages raised here never contain the URL itself, nor, for API cameras, a resolved path or
whether a file outside the allowed folders exists.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

NETWORK_SCHEMES = ("rtsp", "rtsps", "http", "https")
MAX_URL_LENGTH = 2048
MAX_DEVICE_INDEX = 63
MASK = "***"
# Query parameters whose values are credentials on common cameras (?user=admin&pwd=...).
SECRET_QUERY_KEYS = frozenset(
    {
        "password",
        "passwd",
        "pass",
        "pwd",
        "token",
        "access_token",
        "auth",
        "authorization",
        "key",
        "apikey",
        "api_key",
        "secret",
        "signature",
        "sig",
        "credential",
        "credentials",
    }
)
_SCHEME_PREFIX = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_QUERY_PAIR = re.compile(r"([^&=;]+)=([^&;]*)")
_USERINFO = re.compile(r"(//)([^/?#@]*)@")
# A URL inside free text (a log line): a scheme, ``://``, and everything up to a space or a quote.
_URL_IN_TEXT = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"]+")
_PARAMS_START = re.compile(r"[?;]")

SourceKind = Literal["network", "file", "device"]


class CameraUrlError(ValueError):
    """The URL is not an acceptable camera source. The message never contains the URL."""


@dataclass(frozen=True)
class LocalAccess:
    """Which local sources a camera definition may name.

    ``folders is None``: any local file or device (the operator's own camera file); otherwise
    only video files inside one of ``folders`` (cameras added over the API), and no device.
    """

    folders: tuple[Path, ...] | None

    @classmethod
    def within(cls, folders: Sequence[Path]) -> LocalAccess:
        return cls(tuple(Path(folder).resolve() for folder in folders))


#: The operator's camera file: any local file or device.
ANY_LOCAL = LocalAccess(None)


@dataclass(frozen=True)
class CameraSource:
    """What a camera URL means: its kind, the canonical text to store, and what to give OpenCV."""

    kind: SourceKind
    url: str  # canonical form: the network URL as given, an absolute path, or a device index
    target: str | int  # argument for cv2.VideoCapture

    @property
    def local(self) -> bool:
        return self.kind != "network"


def parse_source(url: str | int, *, local: LocalAccess, base_dir: Path | None = None) -> CameraSource:
    """Check ``url`` and say what it is; raise :class:`CameraUrlError` when it is not acceptable."""
    if isinstance(url, bool):
        raise CameraUrlError("url must be a string or a device index")
    if isinstance(url, int):
        url = str(url)
    if not isinstance(url, str):
        raise CameraUrlError("url must be a string or a device index")
    if not url:
        raise CameraUrlError("url is empty")
    if len(url) > MAX_URL_LENGTH:
        raise CameraUrlError(f"url is longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise CameraUrlError("url contains whitespace or control characters")
    try:
        url.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: no YAML file or JSON answer could hold it
        raise CameraUrlError("url is not valid Unicode text") from None

    if url.isdigit():
        index = int(url)
        if index > MAX_DEVICE_INDEX:
            raise CameraUrlError(f"device index must be between 0 and {MAX_DEVICE_INDEX}")
        if local.folders is not None:
            raise CameraUrlError("device indices are allowed only in the operator's camera file")
        return CameraSource("device", str(index), index)

    scheme_match = _SCHEME_PREFIX.match(url)
    if scheme_match is None:
        return _file_source(url, Path(url), local=local, base_dir=base_dir)
    scheme = scheme_match.group(1).lower()
    if scheme == "file":
        if not url.lower().startswith("file:///"):
            raise CameraUrlError("file URLs must be absolute: file:///path/to/video.mp4")
        return _file_source(url, Path(unquote(url[len("file://") :])), local=local, base_dir=None)
    if scheme not in NETWORK_SCHEMES:
        allowed = ", ".join(f"{s}://" for s in NETWORK_SCHEMES)
        raise CameraUrlError(f"unsupported scheme {scheme[:16]!r}; use {allowed}, a local video file or a device index")
    return _network_source(url, scheme)


def source_of(url: str) -> CameraSource:
    """Classify a canonical URL (as :func:`parse_source` returned it) without touching the filesystem."""
    if url.isdigit():
        return CameraSource("device", url, int(url))
    if _SCHEME_PREFIX.match(url) is not None:
        return CameraSource("network", url, url)
    return CameraSource("file", url, url)


def _file_source(written: str, path: Path, *, local: LocalAccess, base_dir: Path | None) -> CameraSource:
    """A local video file the ``local`` access allows, as an absolute path with symlinks resolved."""
    if local.folders is not None and not local.folders:
        raise CameraUrlError(
            "local files are not allowed for cameras added over the API "
            "(VISION_LOCAL_SOURCE_DIRS lists the folders that are)"
        )
    if not path.is_absolute():
        path = (base_dir or Path.cwd()) / path
    path = path.resolve()
    if local.folders is not None:
        # Checked before the file is looked at: outside the folders, existence is never told.
        if not any(path.is_relative_to(folder) for folder in local.folders):
            raise CameraUrlError("local files must be inside the folders of VISION_LOCAL_SOURCE_DIRS")
        if not path.is_file():
            raise CameraUrlError("no such video file in the folders of VISION_LOCAL_SOURCE_DIRS")
    elif not path.is_file():
        # The operator's own file: name the path as written there, so the mistake is obvious.
        raise CameraUrlError(f"no such video file: {written[:256]}")
    return CameraSource("file", str(path), str(path))


def _network_source(url: str, scheme: str) -> CameraSource:
    if not url[len(scheme) :].startswith("://"):
        raise CameraUrlError(f"a {scheme} URL must look like {scheme}://host/path")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise CameraUrlError(f"the {scheme} URL is malformed (host or port)") from None
    if not parts.hostname:
        raise CameraUrlError(f"the {scheme} URL has no host")
    if port == 0:
        raise CameraUrlError("port 0 is not a valid port")
    return CameraSource("network", url, url)


def mask_url(url: str | int) -> str:
    """The URL with its password (or a lone user token) and secret query values replaced by ``***``."""
    text = str(url)
    if _SCHEME_PREFIX.match(text) is None:
        return text  # a local path or device index carries no credentials
    try:
        parts = urlsplit(text)
    except ValueError:
        return _USERINFO.sub(rf"\1{MASK}@", text)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, has_password, _ = userinfo.partition(":")
        # A user without a password may itself be a token (https://TOKEN@host): hide it too.
        netloc = f"{user}:{MASK}@{hostport}" if has_password else f"{MASK}@{hostport}"
    query = _QUERY_PAIR.sub(_mask_pair, parts.query)
    masked = urlunsplit(SplitResult(parts.scheme, netloc, parts.path, query, parts.fragment))
    # Anything urlsplit could not see as userinfo (odd inputs) still loses its credentials.
    return _USERINFO.sub(lambda m: m.group(0) if MASK in m.group(2) else f"{m.group(1)}{MASK}@", masked)


def mask_urls_in(text: str) -> str:
    """``text`` with every URL in it shown as :func:`mask_url` shows it (for log lines that quote URLs),
    and secret-looking ``key=value`` parameters after its first ``?`` or ``;`` masked too: path
    parameters (``/stream;token=...``) and the query of a URL ``urlsplit`` cannot parse."""
    return _URL_IN_TEXT.sub(_mask_url_in_text, text)


def _mask_url_in_text(match: re.Match[str]) -> str:
    masked = mask_url(match.group(0))
    params = _PARAMS_START.search(masked)
    if params is None:
        return masked
    pairs = masked[params.end() :].split("?")  # a stray ``?`` separates pairs too
    return masked[: params.end()] + "?".join(_QUERY_PAIR.sub(_mask_pair, part) for part in pairs)


def _mask_pair(match: re.Match[str]) -> str:
    key = match.group(1)
    if unquote(key).strip().lower() in SECRET_QUERY_KEYS:
        return f"{key}={MASK}"
    return match.group(0)


def secrets_of(url: str | int) -> list[str]:
    """The credential strings inside ``url`` (raw and percent-decoded), longest first."""
    text = str(url)
    found: set[str] = set()
    try:
        parts = urlsplit(text)
    except ValueError:
        parts = None
    if parts is not None and "@" in parts.netloc:
        userinfo = parts.netloc.rpartition("@")[0]
        user, has_password, password = userinfo.partition(":")
        found.update([password, unquote(password)] if has_password else [user, unquote(user)])
    query = parts.query if parts is not None else text
    for match in _QUERY_PAIR.finditer(query):
        if unquote(match.group(1)).strip().lower() in SECRET_QUERY_KEYS:
            found.update([match.group(2), unquote(match.group(2))])
    return sorted((s for s in found if s), key=len, reverse=True)


def redact(text: str, url: str | int) -> str:
    """``text`` with ``url`` shown masked and every credential of ``url`` replaced by ``***``."""
    raw = str(url)
    if raw and raw in text:
        text = text.replace(raw, mask_url(raw))
    for secret in secrets_of(raw):
        text = text.replace(secret, MASK)
    return text
