"""Generate the Grafana dashboards in this folder from code (grafana-foundation-sdk).

    python dashboards/build.py           # rewrite dashboards/*.json
    python dashboards/build.py --check   # exit 1 if the committed JSON differs from the code

The JSON files are committed: Grafana provisions them as they are (compose/grafana/), and nothing
needs this script at run time. Edit the panels here, run the script, commit both. Conventions every
panel follows (tests/test_dashboards.py checks them):

* every query reads the `${datasource}` variable and filters per-image metrics with `source=~"$source"`;
* every `rate()` / `increase()` window is `$__rate_interval` (or `$__range` for "over the time range");
* thresholds are drawn from the `vision:threshold:*` recording rules (compose/prometheus/rules/thresholds.yml),
  never typed in twice, and the 5m per-source means come from the shared recording rules;
* every panel has a description that says what a bad value looks like.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import bargauge, heatmap, prometheus, stat, table, timeseries
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders.common import (
    ReduceDataOptions,
    ScaleDistributionConfig,
    StackingConfig,
    VizLegendOptions,
    VizTooltipOptions,
)
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models import heatmap as heatmap_models
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

HERE = Path(__file__).resolve().parent
DATASOURCE = model.DataSourceRef(type_val="prometheus", uid="${datasource}")
SOURCE = 'source=~"$source"'
RI = "$__rate_interval"
THRESHOLD_LEGEND = "alert threshold"
# The service's external URL, read from Prometheus (rule vision:service_url, compose/prometheus/rules/links.yml).
SERVICE_URL = "${vision_url}"


@dataclass
class Q:
    """One PromQL target."""

    expr: str
    legend: str = ""
    instant: bool = False
    fmt: PromQueryFormat = PromQueryFormat.TIME_SERIES

    def build(self, ref_id: str) -> prometheus.Dataquery:
        q = prometheus.Dataquery().expr(self.expr).ref_id(ref_id).datasource(DATASOURCE).format(self.fmt)
        if self.legend:
            q = q.legend_format(self.legend)
        return q.instant() if self.instant else q.range()


def _targets(panel: Any, queries: Sequence[Q]) -> Any:
    for index, query in enumerate(queries):
        panel = panel.with_target(query.build(chr(ord("A") + index)))
    return panel


def _threshold_line(color: str = "red") -> list[model.DynamicConfigValue]:
    return [
        model.DynamicConfigValue(id_val="custom.lineStyle", value={"fill": "dash", "dash": [10, 10]}),
        model.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": color}),
        model.DynamicConfigValue(id_val="custom.fillOpacity", value=0),
    ]


def _legend() -> Any:
    return (
        VizLegendOptions()
        .display_mode(common.LegendDisplayMode.TABLE)
        .placement(common.LegendPlacement.BOTTOM)
        .show_legend(True)
        .calcs(["mean", "min", "max", "lastNotNull"])
    )


def _tooltip() -> Any:
    return VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI).sort(common.SortOrder.DESCENDING)


def _steps(*steps: tuple[float | None, str]) -> Any:
    return (
        db.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(value=value, color=color) for value, color in steps])
    )


def _panel(builder: Any, title: str, description: str, *, w: int, h: int, unit: str | None = None) -> Any:
    """What every panel has: title, the operator's description, the data source variable and its size."""
    panel = builder.title(title).description(description).datasource(DATASOURCE)
    if unit is not None:
        panel = panel.unit(unit)
    return panel.span(w).height(h)


def _options(panel: Any, **options: Any) -> Any:
    """Call the builder method of each option that is set (``thresholds=steps`` -> ``panel.thresholds(steps)``)."""
    for name, value in options.items():
        if value is not None:
            panel = getattr(panel, name)(value)
    return panel


def ts(
    title: str,
    description: str,
    queries: Sequence[Q],
    *,
    unit: str = "short",
    w: int = 12,
    h: int = 8,
    minimum: float | None = None,
    maximum: float | None = None,
    log: bool = False,
    stacked: bool = False,
    threshold_colors: dict[str, str] | None = None,
) -> Any:
    """A time series; targets whose legend starts with 'alert threshold' / 'watch' are drawn dashed."""
    panel = (
        _panel(timeseries.Panel(), title, description, w=w, h=h, unit=unit)
        .legend(_legend())
        .tooltip(_tooltip())
        .line_width(2)
        .fill_opacity(10 if not stacked else 60)
        .span_nulls(False)
    )
    panel = _options(panel, min=minimum, max=maximum)
    if log:
        panel = panel.scale_distribution(ScaleDistributionConfig().type(common.ScaleDistribution.LOG).log(10))
    if stacked:
        panel = panel.stacking(StackingConfig().mode(common.StackingMode.NORMAL)).draw_style(common.GraphDrawStyle.BARS)
    for legend, color in (threshold_colors or {THRESHOLD_LEGEND: "red"}).items():
        panel = panel.override_by_regexp(f"^{legend}.*", _threshold_line(color))
    return _targets(panel, queries)


def heat(title: str, description: str, metric: str, *, unit: str, log: bool = False, w: int = 12, h: int = 8) -> Any:
    """Distribution over time from the histogram buckets of ``metric`` (selected sources pooled)."""
    y_axis = heatmap.YAxisConfig().unit(unit)
    if log:
        y_axis = y_axis.scale_distribution(ScaleDistributionConfig().type(common.ScaleDistribution.LOG).log(10))
    panel = (
        _panel(heatmap.Panel(), title, description, w=w, h=h)
        .calculate(False)
        .rows_frame(heatmap.RowsHeatmapOptions().layout(common.HeatmapCellLayout.LE))
        .color(heatmap.HeatmapColorOptions().mode(heatmap_models.HeatmapColorMode.SCHEME).scheme("Oranges").steps(64))
        .y_axis(y_axis)
        .cell_gap(1)
        .show_value(common.VisibilityMode.NEVER)
        .show_legend()
        .mode(common.TooltipDisplayMode.SINGLE)
        .show_y_histogram()
    )
    query = Q(
        f"sum by (le) (increase({metric}_bucket{{{SOURCE}}}[{RI}]))",
        legend="{{le}}",
        fmt=PromQueryFormat.HEATMAP,
    )
    return _targets(panel, [query])


def stat_panel(
    title: str,
    description: str,
    queries: Sequence[Q],
    *,
    unit: str = "short",
    w: int = 6,
    h: int = 5,
    steps: Any = None,
    mappings: list[Any] | None = None,
    decimals: float | None = None,
    links: list[Any] | None = None,
) -> Any:
    panel = (
        _panel(stat.Panel(), title, description, w=w, h=h, unit=unit)
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.AREA)
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )
    panel = _options(panel, thresholds=steps, mappings=mappings or None, decimals=decimals, data_links=links)
    return _targets(panel, queries)


def bars(
    title: str,
    description: str,
    queries: Sequence[Q],
    *,
    unit: str = "short",
    w: int = 12,
    h: int = 8,
    steps: Any = None,
    minimum: float | None = None,
    maximum: float | None = None,
    decimals: float | None = None,
) -> Any:
    panel = (
        _panel(bargauge.Panel(), title, description, w=w, h=h, unit=unit)
        .orientation(common.VizOrientation.HORIZONTAL)
        .display_mode(common.BarGaugeDisplayMode.GRADIENT)
        .show_unfilled(True)
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )
    panel = _options(panel, thresholds=steps, min=minimum, max=maximum, decimals=decimals)
    return _targets(panel, queries)


def table_panel(
    title: str,
    description: str,
    queries: Sequence[Q],
    *,
    w: int = 24,
    h: int = 7,
    rename: dict[str, str] | None = None,
    exclude: Sequence[str] = ("Time",),
    units: dict[str, str] | None = None,
    mappings: dict[str, list[Any]] | None = None,
    steps: dict[str, Any] | None = None,
    merge: bool = False,
    links: list[Any] | None = None,
) -> Any:
    """Instant queries as a table; with ``merge`` the queries are joined on their common labels."""
    panel = _panel(table.Panel(), title, description, w=w, h=h).align(common.FieldTextAlignment.AUTO).inspect(False)
    panel = _options(panel, data_links=links)
    if merge:
        panel = panel.with_transformation(model.DataTransformerConfig(id_val="merge", options={}))
    panel = panel.with_transformation(
        model.DataTransformerConfig(
            id_val="organize",
            options={
                "excludeByName": dict.fromkeys(exclude, True),
                "renameByName": rename or {},
                "indexByName": {},
            },
        )
    )
    for name, unit in (units or {}).items():
        panel = panel.override_by_name(name, [model.DynamicConfigValue(id_val="unit", value=unit)])
    for name, value_mappings in (mappings or {}).items():
        panel = panel.override_by_name(
            name,
            [
                model.DynamicConfigValue(id_val="mappings", value=value_mappings),
                model.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-background"}),
            ],
        )
    for name, threshold in (steps or {}).items():
        panel = panel.override_by_name(
            name,
            [
                model.DynamicConfigValue(id_val="thresholds", value=threshold.build()),
                model.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-background"}),
            ],
        )
    return _targets(panel, [Q(q.expr, q.legend, instant=True, fmt=PromQueryFormat.TABLE) for q in queries])


def two_state_mapping(good: tuple[str, str], bad: tuple[str, str]) -> list[model.ValueMap]:
    """(value, text) pairs: the good state's text in green, the bad one's in red."""
    return [
        model.ValueMap(
            options={
                good[0]: model.ValueMappingResult(text=good[1], color="green", index=0),
                bad[0]: model.ValueMappingResult(text=bad[1], color="red", index=1),
            }
        )
    ]


def mean(metric: str, by: str = "source", selector: str = SOURCE, window: str = RI) -> str:
    """Average of a histogram over ``window``: rate of _sum / rate of _count, per ``by``."""
    return (
        f"sum by ({by}) (rate({metric}_sum{{{selector}}}[{window}]))"
        f" / (sum by ({by}) (rate({metric}_count{{{selector}}}[{window}])) > 0)"
    )


def quantile(q: float, metric: str, by: str = "source", selector: str = SOURCE) -> str:
    return f"histogram_quantile({q}, sum by ({by}, le) (rate({metric}_bucket{{{selector}}}[{RI}])))"


def evidence_link(source: str) -> Any:
    """A data link from a source's value or row to its card on the service's live page (signals, conditions,
    evidence frames); ``source`` is the Grafana expression of the source id."""
    return (
        db.DashboardLink(f"Live page and evidence frames of {source}")
        .url(f"{SERVICE_URL}/#source={source}")
        .target_blank(True)
    )


def service_url_variable() -> Any:
    """Hidden: the service's external URL, recorded once for alerts and dashboards (links.yml)."""
    return (
        db.QueryVariable("vision_url")
        .label("vision-service URL")
        .description(
            "The service's external URL, from the recording rule vision:service_url "
            "(compose/prometheus/rules/links.yml): where the data links to its live page point."
        )
        .datasource(DATASOURCE)
        .query("label_values(vision:service_url, url)")
        .refresh(model.VariableRefresh.ON_DASHBOARD_LOAD)
        .hide(model.VariableHide.HIDE_VARIABLE)
    )


def variables(with_class: bool) -> list[Any]:
    out: list[Any] = [
        db.DatasourceVariable("datasource")
        .label("Data source")
        .type("prometheus")
        .description("The Prometheus that scrapes vision-service."),
        db.QueryVariable("source")
        .label("Source")
        .description("Image sources: configured camera / client ids and 'upload'.")
        .datasource(DATASOURCE)
        .query("label_values(vision_images_total, source)")
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(model.VariableOption(text="All", value="$__all", selected=True)),
    ]
    if with_class:
        out.append(
            db.QueryVariable("class")
            .label("Class")
            .description("Model classes detected on the selected sources.")
            .datasource(DATASOURCE)
            .query(f"label_values(vision_detections_total{{{SOURCE}}}, class)")
            .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(model.VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
            .all_value(".*")
            .current(model.VariableOption(text="All", value="$__all", selected=True))
        )
        out.append(service_url_variable())
    return out


def alert_annotation(selector: str) -> Any:
    return (
        db.AnnotationQuery()
        .name("Firing alerts")
        .datasource(DATASOURCE)
        .enable(True)
        .icon_color("red")
        .expr(f'ALERTS{{alertstate="firing"{selector}}}')
    )


def base(uid: str, title: str, description: str, tags: list[str], *, with_class: bool, alert_selector: str) -> Any:
    return (
        db.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["vision-service", *tags])
        .editable()
        .time("now-3h", "now")
        .refresh("30s")
        .timezone("browser")
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .variables(variables(with_class))
        .annotation(alert_annotation(alert_selector))
        .link(
            db.DashboardLink("Vision dashboards")
            .type(model.DashboardLinkType.DASHBOARDS)
            .tags(["vision-service"])
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
    )


def with_rows(dash: Any, rows: Sequence[tuple[str, Sequence[Any]]]) -> model.Dashboard:
    next_id = 1
    for title, panels in rows:
        dash = dash.with_row(db.Row(title).id(next_id))
        next_id += 1
        for panel in panels:
            dash = dash.with_panel(panel.id(next_id))
            next_id += 1
    built: model.Dashboard = dash.build()
    return built


# --- Input quality and low-light drift ------------------------------------------------------------


def input_quality() -> model.Dashboard:
    threshold = f"{THRESHOLD_LEGEND}: {{{{__name__}}}}"
    overview = [
        stat_panel(
            "Mean brightness (5m)",
            "Mean brightness per source over the last 5 minutes (recording rule "
            "source:vision_image_brightness_ratio:mean5m, what the VisionLowBrightness alert reads). "
            "0 = black, 1 = white; daylight scenes read 0.3-0.6. Bad: below 0.15 (red, the alert threshold "
            "and the 'dark' brightness band); 0.15-0.30 (orange) is dim, where detections start to degrade. "
            "Click a source to see its frames on the service's live page.",
            [Q(f"source:vision_image_brightness_ratio:mean5m{{{SOURCE}}}", "{{source}}")],
            unit="none",
            decimals=2,
            steps=_steps((None, "red"), (0.15, "orange"), (0.3, "green")),
            links=[evidence_link("${__field.labels.source}")],
        ),
        stat_panel(
            "Noise sigma (5m)",
            "Mean estimated sensor noise per source over 5 minutes, in grey levels (0-255). "
            "Clean daylight is 1-3. Bad: above 8 (red, VisionHighNoise threshold): high gain in the dark, "
            "heavy compression, interference.",
            [Q(f"source:vision_image_noise_sigma:mean5m{{{SOURCE}}}", "{{source}}")],
            unit="none",
            decimals=1,
            steps=_steps((None, "green"), (5, "orange"), (8, "red")),
            links=[evidence_link("${__field.labels.source}")],
        ),
        stat_panel(
            "Detections per image (5m)",
            "Mean number of detections per processed image over 5 minutes, per source. Bad: a sudden fall "
            "to 0 or far below the source's usual value while images keep arriving (dark, blurred, covered "
            "or re-pointed camera: compare with brightness and sharpness).",
            [Q(f"source:vision_image_detections:mean5m{{{SOURCE}}}", "{{source}}")],
            decimals=2,
            steps=_steps((None, "blue")),
            links=[evidence_link("${__field.labels.source}")],
        ),
        stat_panel(
            "Images processed",
            "Images per second that passed decoding and were analysed, per source (5m rate). "
            "Bad: 0 for a camera that should be streaming (see the camera table), or far below its fps.",
            [Q(f"source:vision_images_processed:rate5m{{{SOURCE}}}", "{{source}}")],
            unit="ops",
            decimals=2,
            steps=_steps((None, "blue")),
            links=[evidence_link("${__field.labels.source}")],
        ),
        table_panel(
            "Firing alerts",
            "Input-quality, drift, detection and camera alerts firing now for the selected sources "
            "(Prometheus ALERTS). Empty is good. Bad: any row - each names the alert and the source; see "
            "docs/alerts.md for what to do. "
            "Alert start times are also drawn as red annotations on the time series. Click a row for the "
            "source's card on the service's live page: its frames where the trouble began, its darkest, "
            "blurriest and noisiest frames.",
            [
                Q(
                    f'sum by (alertname, severity, source) (ALERTS{{alertstate="firing", {SOURCE}}})',
                )
            ],
            h=6,
            rename={"alertname": "alert", "Value": "series firing"},
            links=[evidence_link("${__data.fields.source}")],
        ),
    ]
    quality = [
        ts(
            "Brightness",
            "Mean brightness (mean luma / 255) per source from the histogram sum and count, and the 10th "
            "percentile (the darkest frames) from its buckets. Dusk shows as a slow fall, a failed light or "
            "blocked lens as a step. Bad: the mean under the dashed alert threshold (0.15) - YOLO recall "
            "drops in the dark.",
            [
                Q(mean("vision_image_brightness_ratio"), "{{source}} mean"),
                Q(quantile(0.1, "vision_image_brightness_ratio"), "{{source}} p10"),
                Q("vision:threshold:low_brightness_ratio", threshold),
            ],
            unit="none",
            minimum=0,
            maximum=1,
        ),
        ts(
            "Contrast",
            "RMS contrast (std of luma / 255) per source: mean, and the 10th percentile of the flattest "
            "frames. Photographs usually read 0.15-0.30. Bad: a fall towards 0.05 or lower - fog, glare, a "
            "dirty or wet lens, night without illumination; objects merge into the background.",
            [
                Q(mean("vision_image_contrast_ratio"), "{{source}} mean"),
                Q(quantile(0.1, "vision_image_contrast_ratio"), "{{source}} p10"),
            ],
            unit="none",
            minimum=0,
        ),
        ts(
            "Sharpness",
            "Variance of the Laplacian at the 640 px analysis size (log scale): median and 10th percentile "
            "per source from the histogram buckets. Sharp street scenes score in the hundreds or more. Bad: "
            "the median under the dashed blur threshold (50) - defocus, motion blur, a fogged lens; very "
            "dark frames also read as blurred.",
            [
                Q(quantile(0.5, "vision_image_sharpness"), "{{source}} p50"),
                Q(quantile(0.1, "vision_image_sharpness"), "{{source}} p10"),
                Q("vision:threshold:blurry_sharpness", threshold),
            ],
            unit="none",
            log=True,
        ),
        ts(
            "Noise",
            "Estimated additive noise sigma in grey levels (0-255): mean and 90th percentile per source. "
            "Clean daylight is 1-3, 5-8 is visible grain. Bad: the mean above the dashed threshold (8) - "
            "high sensor gain at night, noise reduction off, low bitrate; small objects and confidence suffer.",
            [
                Q(mean("vision_image_noise_sigma"), "{{source}} mean"),
                Q(quantile(0.9, "vision_image_noise_sigma"), "{{source}} p90"),
                Q("vision:threshold:high_noise_sigma", threshold),
            ],
            unit="none",
            minimum=0,
        ),
        ts(
            "Exposure: clipped pixels",
            "Mean fraction of pixels clipped to black (underexposed) and to white (overexposed) per source. "
            "A few percent is normal. Bad: underexposure rising at night (detail lost in shadows) or "
            "overexposure from headlights, sun glare or an IR illuminator reflecting - above ~20 % large "
            "parts of the frame carry no information.",
            [
                Q(mean("vision_image_underexposed_ratio"), "{{source}} under"),
                Q(mean("vision_image_overexposed_ratio"), "{{source}} over"),
            ],
            unit="percentunit",
            minimum=0,
            w=24,
        ),
    ]
    distributions = [
        heat(
            "Brightness distribution",
            "How many frames fell into each brightness bucket over time (selected sources pooled). A "
            "healthy day is a band around 0.3-0.6. Bad: the mass sliding into the lowest buckets (< 0.15, "
            "night or a failed light), or splitting into two bands (one camera much darker than the rest).",
            "vision_image_brightness_ratio",
            unit="none",
        ),
        heat(
            "Contrast distribution",
            "Frames per contrast bucket over time. Bad: the band moving down to < 0.05 (fog, glare, "
            "dirty lens, unlit night scene).",
            "vision_image_contrast_ratio",
            unit="none",
        ),
        heat(
            "Sharpness distribution",
            "Frames per sharpness bucket (variance of the Laplacian, log scale). Bad: mass below 50 - "
            "most frames blurred, defocused or too dark to show texture.",
            "vision_image_sharpness",
            unit="none",
            log=True,
        ),
        heat(
            "Noise distribution",
            "Frames per noise-sigma bucket (grey levels). Bad: mass above 8 - sensor gain pushed up in "
            "low light, or compression / cabling artefacts.",
            "vision_image_noise_sigma",
            unit="none",
        ),
    ]
    drift = [
        ts(
            "Drift: PSI against baseline",
            "Population stability index of each quality signal against the source's reference baseline, "
            "per regime (day / twilight / night / all: the window of each regime against the same regime of the "
            "baseline). 0 = same distribution. Bad: above the orange dashed 'watch' line (0.1) is a shift "
            "worth a look, above the red dashed alert threshold (0.25) it fires VisionInputDrift. Flat "
            "lines while a camera is down are stale values.",
            [
                Q(
                    f'max by (source, signal, regime) (vision_drift_score{{{SOURCE}, test="psi"}})',
                    "{{source}} {{signal}} ({{regime}})",
                ),
                Q("vision:threshold:drift_psi_warn", "watch: {{__name__}}"),
                Q("vision:threshold:drift_psi", threshold),
            ],
            unit="none",
            minimum=0,
            threshold_colors={THRESHOLD_LEGEND: "red", "watch": "orange"},
        ),
        ts(
            "Drift: KS statistic against baseline",
            "Two-sample Kolmogorov-Smirnov statistic D (largest gap between the cumulative distributions, "
            "0-1) of each signal against the baseline of its regime. Bad: above the dashed threshold (0.2) - "
            "the input no longer looks like what the model was validated on in that regime (new scene, "
            "moved camera, a night unlike the usual nights).",
            [
                Q(
                    f'max by (source, signal, regime) (vision_drift_score{{{SOURCE}, test="ks"}})',
                    "{{source}} {{signal}} ({{regime}})",
                ),
                Q("vision:threshold:drift_ks", threshold),
            ],
            unit="none",
            minimum=0,
            maximum=1,
        ),
        ts(
            "Drift window size",
            "Frames in the current drift window per source and regime (a regime's window is shown while "
            "the source's recent frames are in it). Scores from windows below the dashed minimum (100 "
            "frames) are too noisy and are ignored by the alert. Bad: stuck below the minimum (too few "
            "frames from the source) or falling to 0 (source stopped).",
            [
                Q(f"max by (source, regime) (vision_drift_window_size{{{SOURCE}}})", "{{source}} ({{regime}})"),
                Q("vision:threshold:drift_min_window_size", f"{THRESHOLD_LEGEND}: minimum window"),
            ],
            unit="short",
            minimum=0,
            w=12,
            h=6,
        ),
        ts(
            "Drift regime",
            "Which regime of its baseline each source is in now (1), by its latest frame: day, twilight (dim "
            "or grainy colour: dusk, dawn), night (the camera's monochrome infrared mode, or dark), or all for "
            "a single-regime baseline. Each regime is compared with its own reference. Bad: a camera stuck in "
            "night by day (its IR-cut filter or day/night switch failed), or flapping between regimes all day "
            "(tune the rule in the baseline).",
            [Q(f"max by (source, regime) (vision_drift_regime{{{SOURCE}}}) > 0", "{{source}} {{regime}}")],
            unit="short",
            minimum=0,
            maximum=1,
            w=12,
            h=6,
        ),
    ]
    detections = [
        ts(
            "Detections per image",
            "Mean detections per processed image per source (histogram sum / count). Bad: falling "
            "towards 0 while brightness or sharpness fall - the model is going blind; a sudden drop with "
            "normal quality signals points to a changed scene, a re-pointed camera or the model.",
            [Q(mean("vision_image_detections"), "{{source}}")],
            minimum=0,
        ),
        ts(
            "Detections per class",
            "Detections per second by model class for the selected sources and classes (stacked). Bad: "
            "a class that is normally present (e.g. person, car) disappearing at night while traffic "
            "continues - missed detections, not an empty scene.",
            [
                Q(
                    f'sum by (class) (rate(vision_detections_total{{{SOURCE}, class=~"$class"}}[{RI}]))',
                    "{{class}}",
                )
            ],
            unit="ops",
            stacked=True,
        ),
        bars(
            "Detection yield by brightness band",
            "Mean detections per image in each brightness band (dark < 0.15, dim 0.15-0.30, normal 0.30-0.70, "
            "bright >= 0.70) over the selected time range. This is the low-light story in one panel. Bad: "
            "'dark' and 'dim' far below 'normal' for the same scene - the model misses objects in low light; "
            "act on lighting or expect lower recall at night.",
            [
                Q(
                    "sum by (brightness_band) (increase(vision_image_detections_sum{" + SOURCE + "}[$__range]))"
                    " / (sum by (brightness_band) (increase(vision_image_detections_count{"
                    + SOURCE
                    + "}[$__range])) > 0)",
                    "{{brightness_band}}",
                    instant=True,
                )
            ],
            decimals=2,
            minimum=0,
            steps=_steps((None, "blue")),
        ),
        bars(
            "Detection confidence by brightness band",
            "Mean confidence of the detections made in each brightness band over the selected time range. "
            "Bad: 'dark' / 'dim' well below 'normal' (more than ~30 % lower: the VisionLowConfidence "
            "ratio) - detections at night are guesses.",
            [
                Q(
                    "sum by (brightness_band) (increase(vision_detection_confidence_sum{" + SOURCE + "}[$__range]))"
                    " / (sum by (brightness_band) (increase(vision_detection_confidence_count{"
                    + SOURCE
                    + "}[$__range])) > 0)",
                    "{{brightness_band}}",
                    instant=True,
                )
            ],
            unit="percentunit",
            minimum=0,
            maximum=1,
            steps=_steps((None, "red"), (0.4, "orange"), (0.6, "green")),
        ),
        ts(
            "Detection confidence",
            "Mean confidence of detections per source, and the 10th percentile of confidence. Bad: a "
            "slide that follows brightness down at dusk, or a step down after a model or camera change.",
            [
                Q(mean("vision_detection_confidence"), "{{source}} mean"),
                Q(quantile(0.1, "vision_detection_confidence"), "{{source}} p10"),
            ],
            unit="percentunit",
            minimum=0,
            maximum=1,
            w=24,
        ),
    ]
    camera_sel = 'camera=~"$source"'
    cameras = [
        table_panel(
            "Camera status",
            "One row per camera (the camera id is its source id): up, measured fps, age of the last frame, "
            "reconnects and dropped or failed frames over the selected time range, whether it counts as "
            "tampered with (any kind) and how long its picture has not changed. Bad: 'down', fps far "
            "below the camera's configured rate, last frame older than ~2 minutes (VisionCameraDown), "
            "reconnects climbing (flaky network or stream), dropped frames growing (the detector cannot "
            "keep up: see the service dashboard), 'tampered' (VisionCameraTampered), picture unchanged "
            "for a minute while frames arrive (VisionCameraFrozen). Click a row for the camera's live card "
            "and evidence frames.",
            [
                Q(f"max by (camera) (vision_camera_up{{{camera_sel}}})"),
                Q(f"max by (camera) (vision_camera_fps{{{camera_sel}}})"),
                Q(f"time() - max by (camera) (vision_camera_last_frame_timestamp_seconds{{{camera_sel}}} > 0)"),
                Q(f"sum by (camera) (increase(vision_camera_reconnects_total{{{camera_sel}}}[$__range]))"),
                Q(
                    "sum by (camera) (increase(vision_camera_frames_total{"
                    + camera_sel
                    + ', outcome=~"dropped|failed"}[$__range]))'
                    f" or (sum by (camera) (vision_camera_up{{{camera_sel}}}) * 0)"
                ),
                Q(f"max by (camera) (vision_camera_tampered{{{camera_sel}}})"),
                Q(f"max by (camera) (vision_camera_new_frame_age_seconds{{{camera_sel}}})"),
            ],
            merge=True,
            h=7,
            rename={
                "Value #A": "status",
                "Value #B": "fps",
                "Value #C": "last frame age",
                "Value #D": "reconnects",
                "Value #E": "dropped / failed frames",
                "Value #F": "tampered",
                "Value #G": "picture unchanged for",
            },
            units={
                "fps": "short",
                "last frame age": "s",
                "reconnects": "short",
                "dropped / failed frames": "short",
                "picture unchanged for": "s",
            },
            mappings={
                "status": two_state_mapping(("1", "up"), ("0", "down")),
                "tampered": two_state_mapping(("0", "ok"), ("1", "tampered")),
            },
            steps={
                "last frame age": _steps((None, "green"), (30, "orange"), (120, "red")),
                "picture unchanged for": _steps((None, "green"), (20, "orange"), (60, "red")),
            },
            links=[evidence_link("${__data.fields.camera}")],
        ),
        ts(
            "Camera tampering scores",
            "Each camera's last frame against its reference scene, per kind, 1 = like the reference "
            "(docs/camera-health.md): moved = structural similarity of the edge layout (counts below 0.5), "
            "covered = low-res contrast ratio (below 0.5 with the layout gone), defocused = sharpness ratio "
            "(below 0.3), obscured = contrast ratio (below 0.5 with sharpness below 0.3). Bad: a kind "
            "staying below its level for longer than VISION_TAMPER_MIN_SECONDS (VisionCameraTampered).",
            [Q(f"max by (camera, kind) (vision_camera_tamper_score{{{camera_sel}}})", "{{camera}} {{kind}}")],
            unit="none",
            minimum=0,
        ),
        ts(
            "Camera picture unchanged for",
            "Seconds since each camera's picture last changed beyond its own sensor noise, while frames "
            "keep arriving (a live still scene renews it with every frame or at least every I-frame). Bad: "
            "a line climbing steadily past the dashed threshold: the camera re-sends a frozen picture "
            "(VisionCameraFrozen).",
            [
                Q(f"max by (camera) (vision_camera_new_frame_age_seconds{{{camera_sel}}})", "{{camera}}"),
                Q("vision:threshold:camera_frozen_seconds", THRESHOLD_LEGEND),
            ],
            unit="s",
            minimum=0,
        ),
        ts(
            "Camera frames by outcome",
            "Frames per second per camera and outcome (recording rule camera_outcome:vision_camera_frames:rate5m). "
            "Bad: 'processed' under the camera's fps, any sustained 'dropped' (the service sheds frames "
            "because the detector is saturated) or 'failed' (decode or stream errors).",
            [Q(f"camera_outcome:vision_camera_frames:rate5m{{{camera_sel}}}", "{{camera}} {{outcome}}")],
            unit="ops",
            minimum=0,
            w=24,
            h=7,
        ),
    ]
    dash = base(
        "vision-input-quality",
        "Vision: input quality and low-light drift",
        "Per-source brightness, contrast, sharpness, noise and exposure, drift against the baseline, "
        "detections per brightness band, alerts and camera status. Tells 'the input changed' from "
        "'the model broke'.",
        ["input-quality"],
        with_class=True,
        alert_selector=f", {SOURCE}",
    )
    return with_rows(
        dash,
        [
            ("Overview", overview),
            ("Input quality over time", quality),
            ("Distributions", distributions),
            ("Drift against the baseline", drift),
            ("Detections", detections),
            ("Cameras", cameras),
        ],
    )


# --- Service and GPU ------------------------------------------------------------------------------

INFERENCE = 'stage="inference"'
SERVICE_ALERTS = "VisionHighInferenceLatency|VisionHighErrorRate|VisionGPUSaturated|VisionModelNotReady"


def service() -> model.Dashboard:
    threshold = f"{THRESHOLD_LEGEND}: {{{{__name__}}}}"
    stage_bucket = f"rate(vision_stage_duration_seconds_bucket[{RI}])"
    firing = f'ALERTS{{alertstate="firing", alertname=~"{SERVICE_ALERTS}"}}'
    overview = [
        stat_panel(
            "Model ready",
            "1 per replica once the model is loaded and warm (/readyz answers 200). Bad: 'not ready' for "
            "longer than a load + warm-up (VisionModelNotReady after 5m): the replica cannot detect; "
            "check the log and the load failures.",
            [Q("vision_model_ready", "{{instance}}")],
            mappings=two_state_mapping(("1", "ready"), ("0", "not ready")),
            steps=_steps((None, "red"), (1, "green")),
        ),
        table_panel(
            "Model",
            "The loaded model per replica: weights, device, task and format (vision_model_info). Bad: "
            "device 'cpu' on a GPU host (CUDA missing, slow inference), or different models on replicas "
            "that should be identical.",
            [Q("vision_model_info")],
            w=12,
            h=5,
            exclude=("Time", "Value", "__name__", "job"),
        ),
        stat_panel(
            "Model load time and failures",
            "Seconds the last model load + warm-up took, and failed loads over the selected time range. "
            "Bad: any failure (wrong weights path, CUDA or memory error); a load time much longer than "
            "usual (slow disk, CPU fallback).",
            [
                Q("max(vision_model_load_duration_seconds)", "load seconds"),
                Q("sum(increase(vision_model_load_failures_total[$__range]))", "failed loads"),
            ],
            decimals=1,
            steps=_steps((None, "blue")),
        ),
        table_panel(
            "Firing service alerts",
            "Latency, error-rate, GPU and model alerts firing now (Prometheus ALERTS). Empty is good; see "
            "docs/alerts.md for each one. Bad: any row, above all a critical one (VisionModelNotReady).",
            [Q(f"sum by (alertname, severity, source, device, instance) ({firing})")],
            h=5,
            rename={"alertname": "alert", "Value": "series firing"},
        ),
    ]
    traffic = [
        ts(
            "Request rate",
            "HTTP requests per second by route and status (the /metrics scrape excluded). Bad: traffic "
            "falling to 0 while clients or cameras should be sending, or a growing share of 4xx/5xx "
            "statuses.",
            [
                Q(
                    f'sum by (route, status) (rate(vision_request_duration_seconds_count{{route!="/metrics"}}[{RI}]))',
                    "{{route}} {{status}}",
                )
            ],
            unit="reqps",
            minimum=0,
        ),
        ts(
            "Error rate",
            "Share of HTTP responses with a 5xx status (service-wide) and share of images rejected per "
            "selected source (recording rules vision:request_5xx:ratio5m and "
            "source:vision_images_rejected:ratio5m). Bad: above the dashed 5 % threshold for 10 minutes "
            "(VisionHighErrorRate): a broken client or camera sending bad images, or the service failing.",
            [
                Q("vision:request_5xx:ratio5m", "HTTP 5xx"),
                Q(f"source:vision_images_rejected:ratio5m{{{SOURCE}}}", "{{source}} rejected"),
                Q("vision:threshold:error_ratio", threshold),
            ],
            unit="percentunit",
            minimum=0,
        ),
        ts(
            "Rejected inputs by reason",
            "Images refused per second by reason (decode error, too large, unsupported type, unknown "
            "source, not ready, overloaded...) for the selected sources. Bad: any sustained rate - one "
            "reason dominating names the culprit (a client sending the wrong format, a camera with a "
            "broken encoder, 'overloaded' when the detector queue is full).",
            [
                Q(
                    f'sum by (reason) (rate(vision_images_total{{outcome="rejected", {SOURCE}}}[{RI}]))',
                    "{{reason}}",
                )
            ],
            unit="ops",
            stacked=True,
        ),
        ts(
            "Images processed per source",
            "Images analysed per second per source (5m rate, recording rule source:vision_images_processed:rate5m). "
            "Bad: a source dropping to 0 unexpectedly.",
            [Q(f"source:vision_images_processed:rate5m{{{SOURCE}}}", "{{source}}")],
            unit="ops",
            minimum=0,
        ),
    ]
    latency = [
        ts(
            "Inference latency per device (p50 / p95 / p99)",
            "Seconds per image in the inference stage, quantiles from the histogram buckets merged over "
            "replicas, per device. GPU: ~10-40 ms, CPU: ~100-300 ms for YOLO11n at 640 px. Bad: p95 above "
            "the dashed threshold (0.5 s, VisionHighInferenceLatency) - CPU fallback, GPU saturation or "
            "large batches; real-time streams fall behind.",
            [
                Q(quantile(0.5, "vision_stage_duration_seconds", "device", INFERENCE), "{{device}} p50"),
                Q(quantile(0.95, "vision_stage_duration_seconds", "device", INFERENCE), "{{device}} p95"),
                Q(quantile(0.99, "vision_stage_duration_seconds", "device", INFERENCE), "{{device}} p99"),
                Q("vision:threshold:inference_p95_seconds", threshold),
            ],
            unit="s",
            minimum=0,
        ),
        ts(
            "Stage latency p95 (5m)",
            "p95 seconds of every pipeline stage (decode, quality, preprocess, inference, postprocess) per "
            "device (recording rule stage_device:vision_stage_duration_seconds:p95_5m). Bad: a stage other "
            "than inference dominating - decode of huge uploads, quality analysis on CPU - or any stage "
            "growing with load.",
            [Q("stage_device:vision_stage_duration_seconds:p95_5m", "{{stage}} {{device}}")],
            unit="s",
            minimum=0,
            log=True,
        ),
        ts(
            "Stage latency p50 / p99",
            "Median and 99th percentile per stage and device from the histogram buckets. Bad: p99 far above "
            "p50 (stalls: garbage collection, GPU contention, queueing) or p50 growing over time.",
            [
                Q(f"histogram_quantile(0.5, sum by (stage, device, le) ({stage_bucket}))", "{{stage}} {{device}} p50"),
                Q(f"histogram_quantile(0.99, sum by (stage, device, le) ({stage_bucket}))", "{{stage}} {{device}} p99"),
            ],
            unit="s",
            minimum=0,
            log=True,
        ),
        ts(
            "Request latency p95 by route",
            "p95 seconds of HTTP requests per route (includes waiting for the detector). Bad: far above "
            "the inference p95 - requests are queueing (see queue depth), or large uploads are slow to read.",
            [
                Q(
                    "histogram_quantile(0.95, sum by (route, le) (rate(vision_request_duration_seconds_bucket"
                    f'{{route!="/metrics"}}[{RI}])))',
                    "{{route}}",
                )
            ],
            unit="s",
            minimum=0,
        ),
        ts(
            "Batch size",
            "Frames per detector call: mean and p95. Batching raises GPU throughput. Bad: mean stuck at 1 "
            "on a busy GPU (no batching, wasted throughput), or batches at the maximum with rising latency "
            "(saturated).",
            [
                Q(
                    f"sum(rate(vision_batch_size_sum[{RI}])) / (sum(rate(vision_batch_size_count[{RI}])) > 0)",
                    "mean",
                ),
                Q(f"histogram_quantile(0.95, sum by (le) (rate(vision_batch_size_bucket[{RI}])))", "p95"),
            ],
            minimum=0,
        ),
        ts(
            "Queue depth",
            "Frames admitted and waiting for or inside the detector, per replica. Bad: staying near "
            "VISION_MAX_PENDING_FRAMES (32) - new frames get 503 'overloaded'; add capacity or lower the "
            "camera fps.",
            [Q("sum by (instance) (vision_queue_depth)", "{{instance}}")],
            minimum=0,
        ),
    ]
    gpu = [
        ts(
            "GPU utilization",
            "Fraction of time each GPU was busy (NVML), per replica and GPU. No data on CPU-only hosts. "
            "Bad: above the dashed threshold (95 %) for 15 minutes (VisionGPUSaturated) - requests queue; "
            "near 0 while traffic flows means inference is not running on the GPU.",
            [
                Q("vision_gpu_utilization_ratio", "{{instance}} gpu {{gpu}}"),
                Q("vision:threshold:gpu_utilization_ratio", threshold),
            ],
            unit="percentunit",
            minimum=0,
            maximum=1,
        ),
        ts(
            "GPU memory",
            "GPU memory in use and installed per GPU (NVML). No data on CPU-only hosts. Bad: used close "
            "to total - out-of-memory errors (5xx) on larger batches or a second model; growing steadily "
            "- a leak.",
            [
                Q("vision_gpu_memory_used_bytes", "{{instance}} gpu {{gpu}} used"),
                Q("vision_gpu_memory_total_bytes", "{{instance}} gpu {{gpu}} total"),
            ],
            unit="bytes",
            minimum=0,
        ),
    ]
    dash = base(
        "vision-service",
        "Vision: service and GPU",
        "Request and error rates, pipeline latency per device, batching and queueing, GPU utilisation and "
        "memory, model readiness and rejected inputs.",
        ["service"],
        with_class=False,
        alert_selector=f', alertname=~"{SERVICE_ALERTS}"',
    )
    return with_rows(
        dash,
        [
            ("Model", overview),
            ("Traffic and errors", traffic),
            ("Latency and batching", latency),
            ("GPU", gpu),
        ],
    )


DASHBOARDS = {"input-quality.json": input_quality, "service.json": service}


def render(dashboard: model.Dashboard) -> str:
    return json.dumps(dashboard, cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail if the committed JSON is out of date")
    args = parser.parse_args(argv)
    stale = []
    for name, make in DASHBOARDS.items():
        path = HERE / name
        text = render(make())
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
            print(f"wrote {path}")
    if stale:
        print(f"out of date: {', '.join(stale)}; run: python dashboards/build.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
