"""The Camera model and the YAML camera file: load at start, atomic rewrite when changes persist.

File format (``VISION_CAMERAS_FILE``)::

    cameras:
      - id: street                      # metrics label: [a-z0-9][a-z0-9_-]{0,62}
        url: rtsp://user:pass@10.0.0.5/stream1
        fps: 2                          # sample rate, frames per second
      - id: demo
        url: videos/demo.mp4            # relative to this file's folder
        fps: 1
        loop: true                      # local files only: start over at the end
        enabled: false                  # listed, not read

A bare list of cameras (without the ``cameras:`` key) is accepted too. Validation errors name the
camera and the field, never the URL (it may hold a password).

A camera of the file that cannot run as written (a local file that is gone, a URL refused by
validation) does not stop the service: it is loaded as an :class:`InvalidCamera`, listed with its
error and never opened, and kept as written when the file is rewritten. Only a file that cannot
be read as a list of cameras with unique, valid ids fails the start.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic.fields import FieldInfo

from vision_service.cameras.url import (
    ANY_LOCAL,
    CameraSource,
    CameraUrlError,
    LocalAccess,
    mask_url,
    parse_source,
    source_of,
)
from vision_service.core.config import SOURCE_ID_PATTERN, UPLOAD_SOURCE

MAX_FPS = 30.0
DEFAULT_FPS = 1.0
# Permissions of a newly written camera file: its URLs may carry passwords.
NEW_FILE_MODE = 0o600


class CameraConfigError(ValueError):
    """The camera file or a camera definition is invalid; the message is safe to log and return."""


class Camera(BaseModel):
    """One camera as configured. ``url`` is the secret-bearing original; show :attr:`masked_url`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(
        pattern=SOURCE_ID_PATTERN.pattern,
        description="The camera id and its metrics label: lower-case letters, digits, '-' and '_', 1-63 characters.",
    )
    url: str = Field(
        description="rtsp://, rtsps://, http(s):// (MJPEG or video), a local video file or a device index."
    )
    fps: float = Field(DEFAULT_FPS, gt=0, le=MAX_FPS, description="Sample rate: frames per second sent to the model.")
    enabled: bool = Field(True, description="Disabled cameras are listed but not read.")
    loop: bool = Field(False, description="Local files only: start over at the end instead of stopping.")
    tls_verify: bool = Field(
        True,
        description="https:// and rtsps:// only: verify the camera's certificate and name against "
        "VISION_CAMERA_CA_FILE. false only for a camera you trust whose certificate cannot be verified.",
    )

    @field_validator("id")
    @classmethod
    def _not_upload(cls, value: str) -> str:
        if value == UPLOAD_SOURCE:
            raise ValueError(f"{UPLOAD_SOURCE!r} is reserved for uploaded images")
        return value

    @field_validator("url", mode="before")
    @classmethod
    def _check_url(cls, value: object, info: ValidationInfo) -> str:
        context = info.context or {}
        if not isinstance(value, (str, int)):
            raise ValueError("url must be a string or a device index")
        try:
            source = parse_source(
                value, local=context.get("local", LocalAccess.within(())), base_dir=context.get("base_dir")
            )
        except CameraUrlError as exc:
            raise ValueError(str(exc)) from None
        return source.url

    @model_validator(mode="after")
    def _loop_needs_file(self) -> Camera:
        if self.loop and self.source().kind != "file":
            raise ValueError("loop: true applies to local video files only")
        return self

    def source(self) -> CameraSource:
        """What to open: the URL was checked at validation, so this only classifies it."""
        return source_of(self.url)

    @property
    def masked_url(self) -> str:
        return mask_url(self.url)

    def public(self) -> dict[str, Any]:
        """The camera as the API shows it: every field, the URL masked."""
        return {**self.model_dump(), "url": self.masked_url}

    def to_file(self) -> dict[str, Any]:
        """The camera as the YAML file stores it (the real URL: the file is the operator's secret store)."""
        out: dict[str, Any] = {
            "id": self.id,
            "url": self.url,
            "fps": int(self.fps) if self.fps.is_integer() else self.fps,
        }
        if not self.enabled:
            out["enabled"] = False
        if self.loop:
            out["loop"] = True
        if not self.tls_verify:
            out["tls_verify"] = False
        return out

    def __repr__(self) -> str:
        return f"Camera(id={self.id!r}, url={self.masked_url!r}, fps={self.fps}, enabled={self.enabled})"

    __str__ = __repr__


def describe_errors(exc: ValidationError) -> str:
    """A ValidationError as 'field: problem; ...' without the offending input (it may be a URL)."""
    parts = []
    for error in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(p) for p in error.get("loc", ())) or "camera"
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


def _as_written(value: object, spec: FieldInfo) -> Any:
    """A field of an invalid camera's entry as the API shows it: a flag as its truth value, a number
    field as a float when it is a number (else 0), anything else when it has the field's type (else
    the field's default)."""
    if spec.annotation is bool:
        return bool(value)
    if spec.annotation is float:
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0
    return value if isinstance(value, type(spec.default)) else spec.default


@dataclass(frozen=True)
class InvalidCamera:
    """A camera of the file that cannot run as written: listed with its error, never opened.

    ``written`` is the entry as the file holds it, kept as is when the file is rewritten.
    """

    id: str
    written: Mapping[str, Any]
    error: str
    enabled: bool = False

    @property
    def masked_url(self) -> str:
        return mask_url(str(self.written.get("url", "")))

    def public(self) -> dict[str, Any]:
        """As the API shows it, with the fields of :meth:`Camera.public`: the URL masked, never enabled,
        fps as written when it is a number (else 0), the flags as written (else their defaults)."""
        fixed = {"id": self.id, "url": self.masked_url, "enabled": False}
        return {
            name: fixed[name] if name in fixed else _as_written(self.written.get(name, spec.default), spec)
            for name, spec in Camera.model_fields.items()
        }

    def to_file(self) -> dict[str, Any]:
        return dict(self.written)


def parse_camera(data: object, *, local: LocalAccess, base_dir: Path | None = None) -> Camera:
    """Validate one camera definition; raise :class:`CameraConfigError` with a safe message.

    ``local``: which local sources it may name (:data:`ANY_LOCAL` for the operator's file).
    """
    if not isinstance(data, Mapping):
        raise CameraConfigError("a camera must be an object with id, url, fps, enabled, loop, tls_verify")
    try:
        return Camera.model_validate(dict(data), context={"local": local, "base_dir": base_dir})
    except ValidationError as exc:
        raise CameraConfigError(describe_errors(exc)) from None


def load_cameras(path: Path) -> list[Camera | InvalidCamera]:
    """Read and validate the operator's camera file; relative file paths are relative to its folder.

    A camera with a valid, unique id that does not validate becomes an :class:`InvalidCamera`;
    a file that is not a list of such cameras raises :class:`CameraConfigError`.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CameraConfigError(f"cannot read camera file {path}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # str(exc) quotes the offending line, which may hold a password: give the position only.
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise CameraConfigError(f"camera file {path} is not valid YAML{where}: {problem}") from None
    if data is None:
        return []
    if isinstance(data, Mapping):
        unknown = set(data) - {"cameras"}
        if unknown:
            raise CameraConfigError(f"camera file {path}: unknown top-level keys {sorted(map(str, unknown))}")
        data = data.get("cameras") or []
    if not isinstance(data, list):
        raise CameraConfigError(f"camera file {path}: expected a list under 'cameras'")
    cameras: list[Camera | InvalidCamera] = []
    seen: set[str] = set()
    for index, item in enumerate(data):
        name = item.get("id") if isinstance(item, Mapping) else None
        label = f"camera #{index + 1}" + (f" ({str(name)[:64]!r})" if name is not None else "")
        if not isinstance(item, Mapping):
            raise CameraConfigError(f"camera file {path}: {label}: a camera must be an object with id, url, ...")
        if not isinstance(name, str) or not SOURCE_ID_PATTERN.match(name) or name == UPLOAD_SOURCE:
            try:  # the id's own error, from the model's validation
                parse_camera(item, local=ANY_LOCAL, base_dir=path.resolve().parent)
            except CameraConfigError as exc:
                raise CameraConfigError(f"camera file {path}: {label}: {exc}") from None
        if name in seen:
            raise CameraConfigError(f"camera file {path}: {label}: duplicate id")
        seen.add(str(name))
        try:
            cameras.append(parse_camera(item, local=ANY_LOCAL, base_dir=path.resolve().parent))
        except CameraConfigError as exc:
            cameras.append(InvalidCamera(str(name), dict(item), f"{label}: {exc}"))
    return cameras


def dump_cameras(cameras: Iterable[Camera | InvalidCamera]) -> str:
    header = "# Cameras of vision-service. Rewritten by the service when VISION_CAMERAS_PERSIST is true.\n"
    return header + yaml.safe_dump({"cameras": [c.to_file() for c in cameras]}, sort_keys=False)


def save_cameras(path: Path, cameras: Sequence[Camera | InvalidCamera]) -> None:
    """Replace ``path`` atomically: write a temporary file beside it, fsync, rename over it.

    A reader (or a crash) sees either the old file or the new one, never half of one. The file
    keeps its permissions; a new one is created 0600 because URLs may carry passwords.
    """
    target = path.resolve()  # through a symlink, so the link stays a link
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = target.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = NEW_FILE_MODE
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            os.fchmod(out.fileno(), mode)
            out.write(dump_cameras(cameras))
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Delete what an interrupted :func:`save_cameras` left beside ``path`` (``.<name>.*.tmp``); return them."""
    target = path.resolve()
    stale = sorted(target.parent.glob(f".{target.name}.*.tmp"))
    for leftover in stale:
        leftover.unlink(missing_ok=True)
    return stale
