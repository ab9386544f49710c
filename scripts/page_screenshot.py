"""The screenshots of the README: the live page after a day -> night demo run, and a folder report.

    python scripts/page_screenshot.py [--minutes 7.5] [--out docs/img]

1. Starts ``vision-service serve`` on 127.0.0.1 (sources street, parking, entrance; evidence on
   disk; baselines learned from each source's first daylight frames), and runs the demo load
   (``vision-service demo``'s day-night cycle of real photographs, cycle ``2 x 0.8 x --minutes``)
   for ``--minutes``, so the run ends at night; then opens ``/`` in headless Chromium
   (tests/browser.py) and saves ``live-page.png``.
2. Writes the demo's frames of one day -> night sequence into a folder, runs
   ``vision-service analyze FOLDER --report``, opens the report in Chromium and saves ``report.png``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("YOLO_OFFLINE", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from tests.browser import Chromium  # noqa: E402
from tests.conftest import test_model_path  # noqa: E402
from tests.infra import http_json, vision_service  # noqa: E402
from vision_service.clients.demo import NIGHT_PROFILES, DemoConfig, load_photos, render, run  # noqa: E402

SOURCES = ("street", "parking", "entrance")


def live_page(out: Path, minutes: float, tmp: Path) -> Path:
    env = {
        "VISION_SOURCES": ",".join(SOURCES),
        "VISION_EVIDENCE_DIR": str(tmp / "evidence"),
        "VISION_BASELINE_LEARN_FRAMES": "40",
        "VISION_DRIFT_WINDOW_FRAMES": "100",
    }
    with vision_service(tmp, model=test_model_path(), env=env) as base:
        seconds = minutes * 60
        # Half a cycle is day -> night; the run ends a little past the darkest point.
        config = DemoConfig(url=base, sources=SOURCES, cycle_seconds=2 * 0.8 * seconds, duration=seconds, rate=2.0)
        stats = run(config, report=lambda line: print(line, flush=True))
        print(f"demo: {stats.sent} sent, {stats.processed} processed, {stats.rejected} rejected")
        body = http_json(f"{base}/v1/sources")
        for source in body["sources"]:
            print(source["id"], [c["name"] for c in source["conditions"]], source["samples"], "evidence frames")
        with Chromium(tmp / "profile", width=1400, height=900) as browser:
            browser.navigate(f"{base}/")
            browser.wait_until(
                "document.querySelectorAll('.card').length === 4 && "
                "[...document.querySelectorAll('.evidence img')].every(i => i.complete && i.naturalWidth > 0)",
                timeout=120,
                what="the cards and their thumbnails",
            )
            path = browser.screenshot(out / "live-page.png")
            leaving = [u for u in browser.requests if not u.startswith((base, "data:"))]
            assert not leaving, leaving
    return path


def report(out: Path, tmp: Path) -> Path:
    folder = tmp / "parking"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    photos = load_photos()
    for step in range(48):  # half a cycle: day at the start, night at the end
        name, photo = photos[step % len(photos)]
        profile = NIGHT_PROFILES[step % len(NIGHT_PROFILES)]
        frame, _ = render(photo, profile, 0.5 * step / 47, rng)
        cv2.imwrite(str(folder / f"{step:03d}-{name}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
    html = tmp / "report.html"
    # Run in tmp with a relative path: the report names the folder as it was given.
    subprocess.run(
        [sys.executable, "-m", "vision_service", "analyze", folder.name, "--report", str(html)], cwd=tmp, check=True
    )
    with Chromium(tmp / "profile-report", width=1200, height=900) as browser:
        browser.navigate(html.as_uri())
        return browser.screenshot(out / "report.png", full_page=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=7.5, help="length of the demo run")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img")
    parser.add_argument("--only", choices=("page", "report"), help="make one of the two")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "report"):
            print("wrote", report(args.out, Path(tmp)))
        if args.only in (None, "page"):
            print("wrote", live_page(args.out, args.minutes, Path(tmp)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
