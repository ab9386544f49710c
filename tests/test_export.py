"""`vision-service export`: a source's evidence frames and a JSON/CSV manifest, from a service or a disk store."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import pytest

from tests.conftest import encode_jpeg
from tests.infra import http_json, vision_service, wait_for
from tests.streams import day_night_frames
from vision_service.clients.export import ExportError, export_from_service, export_from_store, parse_kinds
from vision_service.evidence import KINDS

KEY = "export-test-key"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, model_path: str) -> Iterator[tuple[str, Path]]:
    """A running service with a key and a disk store, fed a day -> night sequence on source street."""
    tmp = tmp_path_factory.mktemp("export")
    store = tmp / "evidence"
    env = {
        "VISION_SOURCES": "street",
        "VISION_IMAGE_SIZE": "320",
        "VISION_API_KEY": KEY,
        "VISION_EVIDENCE_DIR": str(store),
        "VISION_EVIDENCE_MAX_SIDE": "320",
    }
    day, night = day_night_frames(frames_per_photo=2)
    with vision_service(tmp, model=model_path, env=env) as base:
        for frame in day + night:
            http_json(
                f"{base}/v1/detect?source=street",
                data=encode_jpeg(frame),
                headers={"content-type": "image/jpeg", "X-API-Key": KEY},
            )

        def kept() -> bool:
            body = http_json(f"{base}/v1/sources/street/samples", headers={"X-API-Key": KEY})
            return {"darkest", "latest", "lowest_confidence"} <= {k for s in body["samples"] for k in s["kinds"]}

        wait_for(kept, timeout=60, what="evidence frames written")
        yield base, store


def check(out: Path, kinds: set[str]) -> list[dict[str, object]]:
    """The manifest lists every exported JPEG, once, with its numbers; the CSV agrees."""
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format"] == "vision-service-export/1" and manifest["source"] == "street"
    frames = manifest["frames"]
    assert frames and {p.name for p in out.glob("*.jpg")} == {f["file"] for f in frames}
    for frame in frames:
        assert set(frame["kinds"]) <= kinds and frame["kinds"]
        image = cv2.imread(str(out / frame["file"]))
        assert image.shape[:2] == (frame["image_height"], frame["image_width"])
        assert frame["file"].startswith("street_") and frame["id"] in frame["file"]
        for d in frame["detections"]:
            x1, y1, x2, y2 = d["box_xyxy_image"]
            assert 0 <= x1 <= x2 <= frame["image_width"] + 1 and 0 <= y1 <= y2 <= frame["image_height"] + 1
    with (out / "manifest.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["file"] for r in rows] == [f["file"] for f in frames]
    assert all(
        float(r["brightness"]) == pytest.approx(f["quality"]["brightness"], rel=1e-5)
        for r, f in zip(rows, frames, strict=True)
    )
    return frames


def test_export_from_a_running_service(service: tuple[str, Path], tmp_path: Path) -> None:
    base, _ = service
    result = export_from_service(base, "street", ("darkest", "lowest_confidence"), tmp_path / "out", api_key=KEY)
    frames = check(tmp_path / "out", {"darkest", "lowest_confidence"})
    assert result.frames == len(frames) >= 1
    darkest = [f for f in frames if "darkest" in f["kinds"]]
    assert len(darkest) == 1


def test_export_from_the_store_gives_the_same_frames(service: tuple[str, Path], tmp_path: Path) -> None:
    base, store = service
    over_http = export_from_service(base, "street", KINDS, tmp_path / "http", api_key=KEY)
    from_disk = export_from_store(store, "street", KINDS, tmp_path / "disk")
    assert over_http.frames == from_disk.frames
    assert {p.name for p in (tmp_path / "http").glob("*.jpg")} == {p.name for p in (tmp_path / "disk").glob("*.jpg")}
    for image in (tmp_path / "disk").glob("*.jpg"):
        assert image.read_bytes() == (tmp_path / "http" / image.name).read_bytes()
    check(tmp_path / "disk", set(KINDS))


def export_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m vision_service export ARGS`` (``env``: instead of this process's environment)."""
    return subprocess.run(
        [sys.executable, "-m", "vision_service", "export", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def test_the_cli_exports_and_says_what_it_wrote(service: tuple[str, Path], tmp_path: Path) -> None:
    base, _ = service
    result = export_cli(
        "--url", base, "--source", "street", "--kind", "latest", "--out", str(tmp_path / "cli"), "--api-key", KEY
    )
    assert result.returncode == 0, result.stderr
    assert "wrote 1 frames" in result.stdout
    check(tmp_path / "cli", {"latest"})
    refused = export_cli(
        "--url",
        base,
        "--source",
        "street",
        "--out",
        str(tmp_path / "x"),
        env={"PATH": "/usr/bin", "PYTHONPATH": str(Path(__file__).parents[1])},
    )
    assert refused.returncode == 1 and "401" in refused.stderr and "--api-key" in refused.stderr


def test_bad_arguments_are_refused(service: tuple[str, Path], tmp_path: Path) -> None:
    base, store = service
    with pytest.raises(ExportError, match="unknown kind"):
        parse_kinds("darkest,prettiest")
    with pytest.raises(ExportError, match="not a source id"):
        export_from_store(store, "../etc", KINDS, tmp_path / "x")
    with pytest.raises(ExportError, match="no evidence directory"):
        export_from_store(tmp_path / "nowhere", "street", KINDS, tmp_path / "x")
    with pytest.raises(ExportError, match="404"):
        export_from_service(base, "nope", KINDS, tmp_path / "x", api_key=KEY)
    assert parse_kinds("all") == KINDS and parse_kinds("latest, darkest") == ("latest", "darkest")
