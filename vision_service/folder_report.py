"""One self-contained HTML report of a folder of images (``vision-service analyze DIR --report report.html``).

For each quality signal: its distribution over the folder (a histogram drawn by matplotlib, with the
alert threshold where there is one, read from the thresholds file), a summary (mean, percentiles,
how many images cross the threshold) and the worst images as thumbnails with their values. The
file embeds everything (PNG charts and JPEG thumbnails as ``data:`` URIs, CSS inline, no script),
so it can be mailed or archived and opens offline.

Memory stays small on long folders: :class:`FolderReport` keeps each signal's values (a float per
image) and, per signal, only the current worst :data:`WORST` paths in a bounded heap; thumbnails
are made at the end by reading those few files again.
"""

from __future__ import annotations

import base64
import heapq
import html
import io
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np

from quality import SIGNALS, QualityReport
from vision_service.engine import thumbnail_size
from vision_service.engine.decode import decode_image
from vision_service.errors import ImageRejected
from vision_service.thresholds import Thresholds

WORST = 8
THUMBNAIL_SIDE = 200


@dataclass(frozen=True)
class SignalView:
    """How the report shows a signal: which end is worse, its threshold (name in the thresholds file)."""

    field: str
    title: str
    worst: str  # "low" or "high"
    threshold: str | None
    log: bool = False
    digits: int = 3


VIEWS: tuple[SignalView, ...] = (
    SignalView("brightness", "Brightness (darkest first)", "low", "low_brightness_ratio"),
    SignalView("contrast", "Contrast (flattest first)", "low", None),
    SignalView("sharpness", "Sharpness (blurriest first)", "low", "blurry_sharpness", log=True, digits=1),
    SignalView("noise_sigma", "Noise sigma (noisiest first)", "high", "high_noise_sigma", digits=2),
    SignalView("underexposed_ratio", "Underexposed pixels (most first)", "high", None),
    SignalView("overexposed_ratio", "Overexposed pixels (most first)", "high", None),
    SignalView("colourfulness", "Colourfulness (greyest first: an infrared night reads 0)", "low", None, digits=1),
)
assert {v.field for v in VIEWS} == {s.field for s in SIGNALS}


@dataclass
class FolderReport:
    """Collects one folder's quality reports; :meth:`html` renders the report."""

    folder: str
    thresholds: Thresholds
    values: dict[str, list[float]] = field(default_factory=lambda: {v.field: [] for v in VIEWS})
    # Per signal, a min-heap of (badness, order, relative path): the WORST worst images so far.
    _worst: dict[str, list[tuple[float, int, str]]] = field(default_factory=lambda: {v.field: [] for v in VIEWS})
    failed: list[tuple[str, str]] = field(default_factory=list)
    count: int = 0

    def add(self, path: str, report: QualityReport) -> None:
        self.count += 1
        for view in VIEWS:
            value = float(getattr(report, view.field))
            if not math.isfinite(value):
                continue
            self.values[view.field].append(value)
            badness = -value if view.worst == "low" else value
            heap = self._worst[view.field]
            item = (badness, -self.count, path)  # ties: the earlier file ranks worse
            if len(heap) < WORST:
                heapq.heappush(heap, item)
            elif item > heap[0]:
                heapq.heapreplace(heap, item)

    def fail(self, path: str, reason: str) -> None:
        self.failed.append((path, reason))

    def worst(self, signal: str) -> list[tuple[str, float]]:
        """The worst images of a signal, worst first: (relative path, value)."""
        view = next(v for v in VIEWS if v.field == signal)
        ranked = sorted(self._worst[signal], reverse=True)
        return [(path, -badness if view.worst == "low" else badness) for badness, _, path in ranked]

    # -- rendering ----------------------------------------------------------------------------------

    def html(self, root: Path) -> str:
        """The report; thumbnails are read from ``root / <relative path>``."""
        generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        sections = "".join(self._section(view, root) for view in VIEWS)
        failed = ""
        if self.failed:
            items = "".join(f"<li><code>{html.escape(p)}</code>: {html.escape(r)}</li>" for p, r in self.failed[:100])
            more = f"<p>… and {len(self.failed) - 100} more.</p>" if len(self.failed) > 100 else ""
            failed = (
                f"<section><h2>Files that could not be read ({len(self.failed)})</h2><ul>{items}</ul>{more}</section>"
            )
        return _PAGE.format(
            title=html.escape(f"Image quality of {self.folder}"),
            folder=html.escape(self.folder),
            generated=generated,
            count=self.count,
            failed_count=len(self.failed),
            thresholds=html.escape(Path(self.thresholds.origin).name or "thresholds.yml"),
            summary=self._summary(),
            sections=sections,
            failed=failed,
        )

    def _summary(self) -> str:
        rows = []
        for view in VIEWS:
            values = np.asarray(self.values[view.field])
            if not values.size:
                continue
            p05, p50, p95 = np.quantile(values, (0.05, 0.5, 0.95))
            crossing = ""
            threshold = self._threshold(view)
            if threshold is not None:
                n = int(np.sum(values < threshold) if view.worst == "low" else np.sum(values > threshold))
                side = "<" if view.worst == "low" else ">"
                crossing = html.escape(f"{n} ({100 * n / values.size:.1f} %) {side} {threshold:g}")
            d = view.digits
            rows.append(
                f"<tr><td>{html.escape(view.field)}</td><td>{values.mean():.{d}f}</td><td>{p05:.{d}f}</td>"
                f"<td>{p50:.{d}f}</td><td>{p95:.{d}f}</td><td>{crossing}</td></tr>"
            )
        return "".join(rows)

    def _threshold(self, view: SignalView) -> float | None:
        return None if view.threshold is None else float(getattr(self.thresholds, view.threshold))

    def _section(self, view: SignalView, root: Path) -> str:
        values = self.values[view.field]
        if not values:
            return ""
        chart = _histogram(values, view, self._threshold(view))
        figures = []
        for path, value in self.worst(view.field):
            thumb = _thumbnail(root / path)
            image = (
                f'<img src="data:image/jpeg;base64,{thumb}" alt="{html.escape(path)}">'
                if thumb
                else '<div class="missing">not readable</div>'
            )
            figures.append(
                f'<figure title="{html.escape(path)}">{image}<figcaption><b>{value:.{view.digits}f}</b> '
                f"{html.escape(_short(path))}</figcaption></figure>"
            )
        return (
            f"<section><h2>{html.escape(view.title)}</h2>"
            f'<img class="chart" src="data:image/png;base64,{chart}" alt="distribution of {view.field}">'
            f'<div class="worst">{"".join(figures)}</div></section>'
        )


def _short(path: str, limit: int = 40) -> str:
    return path if len(path) <= limit else "…" + path[-(limit - 1) :]


def _thumbnail(path: Path) -> str | None:
    """The image as the analysis decoded it (EXIF turn, 16-bit grey, first frame), scaled down, as base64 JPEG."""
    try:
        image = decode_image(path.read_bytes(), max_bytes=1 << 31, max_pixels=1 << 31)
    except (ImageRejected, OSError):
        return None
    height, width = thumbnail_size(image.shape[0], image.shape[1], THUMBNAIL_SIDE)
    if (height, width) != image.shape[:2]:
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return base64.b64encode(buffer.tobytes()).decode() if ok else None


def _histogram(values: list[float], view: SignalView, threshold: float | None) -> str:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    data = np.asarray(values)
    figure, axes = plt.subplots(figsize=(7.0, 2.4), dpi=100)
    try:
        if view.log:
            positive = data[data > 0]
            low, high = (positive.min(), positive.max()) if positive.size else (1.0, 10.0)
            bins = np.geomspace(max(low, 1e-3), max(high, low * 1.01, 1e-3 * 1.01), 40)
            axes.hist(np.clip(data, bins[0], None), bins=bins.tolist(), color="#2563eb")
            axes.set_xscale("log")
        else:
            axes.hist(data, bins=40, color="#2563eb")
        if threshold is not None:
            axes.axvline(
                threshold, color="#dc2626", linestyle="--", linewidth=1.5, label=f"alert threshold {threshold:g}"
            )
            axes.legend(loc="upper right", frameon=False, fontsize=8)
        axes.set_xlabel(view.field)
        axes.set_ylabel("images")
        axes.spines[["top", "right"]].set_visible(False)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
    finally:
        plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #1d2330;
       background: #f4f5f7; margin: 0; padding: 1.2rem 1.6rem; }}
h1 {{ margin: 0 0 0.3rem; font-size: 1.4rem; }}
h2 {{ font-size: 1.05rem; margin: 0 0 0.5rem; }}
section {{ background: #fff; border: 1px solid #e2e5ea; border-radius: 8px; padding: 0.9rem 1.1rem; margin: 1rem 0; }}
.muted {{ color: #6b7280; }}
table {{ border-collapse: collapse; font-variant-numeric: tabular-nums; }}
th, td {{ padding: 0.2rem 0.7rem; border-bottom: 1px solid #e2e5ea; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
img.chart {{ max-width: 100%; height: auto; display: block; }}
.worst {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 0.6rem;
          margin-top: 0.6rem; }}
figure {{ margin: 0; font-size: 0.75rem; }}
figure img {{ width: 100%; height: auto; border-radius: 4px; background: #111; display: block; }}
figcaption {{ margin-top: 0.2rem; word-break: break-all; }}
.missing {{ height: 80px; background: #eee; color: #6b7280; display: flex; align-items: center;
            justify-content: center; }}
</style></head>
<body>
<h1>{title}</h1>
<p class="muted">{count} images analysed, {failed_count} unreadable · generated {generated} by vision-service ·
thresholds from {thresholds} · signals at 640 px analysis size (quality/report.py)</p>
<section><h2>Summary</h2>
<table><thead><tr><th>signal</th><th>mean</th><th>p05</th><th>p50</th><th>p95</th>
<th>beyond the alert threshold</th></tr></thead>
<tbody>{summary}</tbody></table></section>
{sections}
{failed}
<p class="muted">Folder: <code>{folder}</code></p>
</body></html>
"""
