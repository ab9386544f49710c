"""The HTML report of a folder: distributions, the worst images, self-contained; built by `analyze --report`."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import quality
from quality.simulate import blur, gaussian_noise, low_light
from tests.streams import photographs
from vision_service.folder_report import VIEWS, WORST, FolderReport
from vision_service.thresholds import load_thresholds


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real photographs by day, at night (in a subfolder), blurred and noisy; and a broken file."""
    root = tmp_path_factory.mktemp("photos")
    (root / "night").mkdir()
    rng = np.random.default_rng(5)
    for i, photo in enumerate(photographs()):
        cv2.imwrite(str(root / f"day-{i}.jpg"), photo)
        cv2.imwrite(str(root / "night" / f"night-{i}.jpg"), low_light(photo, 0.003, rng=rng))
        cv2.imwrite(str(root / f"blurred-{i}.png"), blur(photo, 5.0))
        cv2.imwrite(str(root / f"noisy-{i}.jpg"), gaussian_noise(photo, 20.0, rng=rng))
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff" + b"\x00" * 100)
    return root


def test_the_worst_images_of_each_signal_are_kept_in_a_bounded_heap(folder: Path) -> None:
    report = FolderReport(str(folder), load_thresholds())
    images = sorted(p for p in folder.rglob("*") if p.suffix in (".jpg", ".png") and p.name != "broken.jpg")
    measured = {p.relative_to(folder).as_posix(): quality.measure(cv2.imread(str(p))) for p in images}
    for path, value in measured.items():
        report.add(path, value)
    assert report.count == len(images) == 16
    darkest = report.worst("brightness")
    assert len(darkest) == WORST
    assert [v for _, v in darkest] == sorted(m.brightness for m in measured.values())[:WORST]
    assert all(path.startswith("night/") for path, _ in darkest[:4])
    blurriest = report.worst("sharpness")
    assert {path for path, _ in blurriest[:4]} == {f"blurred-{i}.png" for i in range(4)}
    noisiest = report.worst("noise_sigma")
    assert noisiest[0][1] == max(m.noise_sigma for m in measured.values())


def test_analyze_writes_one_self_contained_report(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = subprocess.run(
        [sys.executable, "-m", "vision_service", "analyze", str(folder), "--report", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "broken.jpg" in result.stderr and "16 images, 1 unreadable" in result.stderr
    assert result.stdout == ""  # the report replaces the table
    text = out.read_text()
    # Everything inside: no script, no link, every image a data: URI.
    assert "<script" not in text and "<link" not in text
    sources = re.findall(r'src="([^"]+)"', text)
    assert sources and all(s.startswith("data:image/") for s in sources)
    assert not re.search(r"https?://", text)
    charts = [s for s in sources if s.startswith("data:image/png")]
    assert len(charts) == len(VIEWS)
    for chart in charts:
        png = base64.b64decode(chart.split(",", 1)[1])
        assert cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR) is not None
    thumbnails = [s for s in sources if s.startswith("data:image/jpeg")]
    assert len(thumbnails) == WORST * len(VIEWS)
    assert "night/night-" in text and "broken.jpg" in text  # relative paths, and the unreadable file named
    assert "alert threshold" in text and "&lt; 0.15" in text  # the threshold of the rules file, crossings counted


def test_names_are_escaped(tmp_path: Path) -> None:
    report = FolderReport("<b>folder</b>", load_thresholds())
    bus = photographs()[0]
    cv2.imwrite(str(tmp_path / "a.jpg"), bus)
    report.add("a.jpg", quality.measure(bus))
    report.fail('<img src=x onerror="alert(1)">.jpg', "<script>")
    page = report.html(tmp_path)
    assert "<b>folder</b>" not in page and "&lt;b&gt;folder&lt;/b&gt;" in page
    assert 'onerror="alert' not in page and "<script>" not in page
