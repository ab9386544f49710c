"""``vision-service export``: a source's evidence frames and a manifest, ready for labelling.

Two ways to get them:

* from a running service, over HTTP as any client would (``--url``): ``GET /v1/sources/{id}/samples``
  then each frame's JPEG, with ``X-API-Key`` when the service has a key;
* from a disk store directly (``--store``, the service's ``VISION_EVIDENCE_DIR``), read only, e.g.
  after the service stopped.

Written to ``--out``: one JPEG per frame, named ``<source>_<UTC time>_<id>.jpg``, and
``manifest.json`` + ``manifest.csv`` with, per frame, its kinds, time, sizes, quality signals,
mean confidence, detections (boxes in the frame's pixels and in the exported image's) and the
conditions that held. File names are built from validated ids only, never from what a server sent.
"""

from __future__ import annotations

import csv
import json
import shutil
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from quality import REPORT_FIELDS
from vision_service.core.config import SOURCE_ID_PATTERN
from vision_service.evidence.rules import KINDS, current_kinds
from vision_service.evidence.sample import SAMPLE_ID
from vision_service.evidence.store import jpeg_path, read_samples

FORMAT = "vision-service-export/1"
CSV_COLUMNS = (
    "file",
    "id",
    "source",
    "kinds",
    "time",
    "width",
    "height",
    "image_width",
    "image_height",
    *REPORT_FIELDS,
    "mean_confidence",
    "detections",
    "classes",
    "conditions",
)


class ExportError(RuntimeError):
    """The export cannot be done (bad arguments, service unreachable or refusing, no such store)."""


@dataclass(frozen=True)
class ExportResult:
    out: Path
    frames: int
    manifest: Path


def parse_kinds(text: str) -> tuple[str, ...]:
    """``"all"`` or a comma-separated list of kinds, checked."""
    if text.strip() in ("", "all"):
        return KINDS
    kinds = tuple(dict.fromkeys(k.strip() for k in text.split(",") if k.strip()))
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ExportError(f"unknown kind {', '.join(unknown)}; kinds: {', '.join(KINDS)}")
    return kinds


def _check_source(source: str) -> None:
    if not SOURCE_ID_PATTERN.match(source):
        raise ExportError(f"source {source!r} is not a source id ({SOURCE_ID_PATTERN.pattern})")


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _file_name(frame: Mapping[str, Any]) -> str:
    stamp = datetime.fromtimestamp(float(frame["time"]), UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{frame['source']}_{stamp}_{frame['id']}.jpg"


def _entry(frame: Mapping[str, Any], kinds: Sequence[str], file: str) -> dict[str, Any]:
    """One manifest entry; detection boxes also in the exported image's pixels."""
    scale_x = frame["image_width"] / frame["width"] if frame["width"] else 1.0
    scale_y = frame["image_height"] / frame["height"] if frame["height"] else 1.0
    detections = []
    for d in frame["detections"]:
        x1, y1, x2, y2 = (float(v) for v in d["box_xyxy"])
        detections.append(
            {
                "class_id": int(d["class_id"]),
                "class_name": str(d["class_name"]),
                "confidence": float(d["confidence"]),
                "box_xyxy": [x1, y1, x2, y2],
                "box_xyxy_image": [
                    round(x1 * scale_x, 1),
                    round(y1 * scale_y, 1),
                    round(x2 * scale_x, 1),
                    round(y2 * scale_y, 1),
                ],
            }
        )
    return {
        "file": file,
        "id": frame["id"],
        "source": frame["source"],
        "kinds": list(kinds),
        "time": _iso(float(frame["time"])),
        "width": int(frame["width"]),
        "height": int(frame["height"]),
        "image_width": int(frame["image_width"]),
        "image_height": int(frame["image_height"]),
        # Frames kept before a signal existed (colourfulness) lack it.
        "quality": {name: float(frame["quality"][name]) for name in REPORT_FIELDS if name in frame["quality"]},
        "mean_confidence": frame.get("mean_confidence"),
        "detections": detections,
        "conditions": list(frame.get("conditions") or []),
    }


def write_manifest(out: Path, entries: Sequence[Mapping[str, Any]], *, origin: str, source: str) -> Path:
    """``manifest.json`` (everything) and ``manifest.csv`` (one row per frame) in ``out``."""
    document = {
        "format": FORMAT,
        "exported": _iso(datetime.now(UTC).timestamp()),
        "origin": origin,
        "source": source,
        "frames": list(entries),
    }
    manifest = out / "manifest.json"
    manifest.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    with (out / "manifest.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_COLUMNS)
        for e in entries:
            writer.writerow(
                [
                    e["file"],
                    e["id"],
                    e["source"],
                    ";".join(e["kinds"]),
                    e["time"],
                    e["width"],
                    e["height"],
                    e["image_width"],
                    e["image_height"],
                    *(f"{e['quality'][name]:.6g}" if name in e["quality"] else "" for name in REPORT_FIELDS),
                    "" if e["mean_confidence"] is None else f"{e['mean_confidence']:.4f}",
                    len(e["detections"]),
                    ";".join(sorted({d["class_name"] for d in e["detections"]})),
                    ";".join(e["conditions"]),
                ]
            )
    return manifest


def _selected(frames: Iterable[tuple[Mapping[str, Any], Sequence[str]]], kinds: Sequence[str]) -> list[Any]:
    wanted = set(kinds)
    return [
        (frame, [k for k in frame_kinds if k in wanted]) for frame, frame_kinds in frames if wanted & set(frame_kinds)
    ]


def export_from_service(
    url: str,
    source: str,
    kinds: Sequence[str],
    out: Path,
    *,
    api_key: str | None = None,
    timeout: float = 60.0,
    report: Callable[[str], None] = lambda line: None,
) -> ExportResult:
    """Fetch the evidence frames of ``source`` of the kinds asked from a running service into ``out``."""
    _check_source(source)
    base = url.rstrip("/")
    headers = {"Accept": "application/json", **({"X-API-Key": api_key} if api_key else {})}
    listing = _get(f"{base}/v1/sources/{urllib.parse.quote(source)}/samples", headers, timeout)
    try:
        body = json.loads(listing)
        frames = [(s, list(s["kinds"])) for s in body["samples"] if SAMPLE_ID.match(str(s.get("id", "")))]
    except (ValueError, KeyError, TypeError) as exc:
        raise ExportError(f"unexpected answer from {base}: {exc}") from None
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for frame, frame_kinds in _selected(frames, kinds):
        frame = {**frame, "source": source}  # our id, not the server's string
        name = _file_name(frame)
        image = _get(
            f"{base}/v1/sources/{source}/samples/{frame['id']}.jpg", {**headers, "Accept": "image/jpeg"}, timeout
        )
        (out / name).write_bytes(image)
        entries.append(_entry(frame, frame_kinds, name))
        report(f"{name}: {', '.join(frame_kinds)}")
    manifest = write_manifest(out, entries, origin=base, source=source)
    return ExportResult(out, len(entries), manifest)


def export_from_store(
    directory: Path, source: str, kinds: Sequence[str], out: Path, *, report: Callable[[str], None] = lambda line: None
) -> ExportResult:
    """Copy the evidence frames of ``source`` of the kinds asked from a disk store (read only) into ``out``."""
    _check_source(source)
    try:
        samples = [s for s in read_samples(directory) if s.source == source]
    except FileNotFoundError as exc:
        raise ExportError(str(exc)) from None
    standing = current_kinds(samples)
    frames = [(s.to_json(), standing[s.id]) for s in samples if s.id in standing]
    by_id = {s.id: s for s in samples}
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for frame, frame_kinds in _selected(frames, kinds):
        name = _file_name(frame)
        shutil.copyfile(jpeg_path(directory, by_id[frame["id"]]), out / name)
        entries.append(_entry(frame, frame_kinds, name))
        report(f"{name}: {', '.join(frame_kinds)}")
    manifest = write_manifest(out, entries, origin=str(directory.resolve()), source=source)
    return ExportResult(out, len(entries), manifest)


def _get(url: str, headers: Mapping[str, str], timeout: float) -> bytes:
    request = urllib.request.Request(url, headers=dict(headers))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data: bytes = response.read()
            return data
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read()).get("detail", "")
        except ValueError:
            detail = ""
        hint = " (pass --api-key or set VISION_API_KEY)" if exc.code == 401 else ""
        raise ExportError(f"{url}: HTTP {exc.code} {detail}{hint}".rstrip()) from None
    except OSError as exc:
        raise ExportError(f"{url}: {exc}") from None
