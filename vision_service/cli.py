"""``vision-service``: serve the API; analyze image files, build baselines, export evidence frames from the shell."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vision_service.regimes import DAY_BRIGHTNESS, MIN_DAY_NOISE, MONOCHROME_COLOURFULNESS, NIGHT_BRIGHTNESS

# Columns of `analyze`'s table printed with one decimal (the others with three).
WHOLE_COLUMNS = ("sharpness", "colourfulness")


class DEFAULTS(argparse.ArgumentDefaultsHelpFormatter):
    """--help shows each flag's default, except where there is none (None: an env variable decides)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        return action.help if action.default is None else super()._get_help_string(action)


def _setting_help(field: str, text: str) -> str:
    """Help of a flag that overrides a setting: its variable and the setting's default."""
    from vision_service.core.config import Settings

    default = Settings.model_fields[field].default
    shown = "unset" if default is None else default
    return f"{text} (VISION_{field.upper()}; default: {shown})".replace("%", "%%")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vision-service", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser(
        "serve",
        help="start the detection API (settings from VISION_* env)",
        description="Start the detection API. Every setting is a VISION_* variable (README, Settings); "
        "these flags override the variables. Defaults shown are the settings' own.",
    )
    serve.add_argument("--host", help=_setting_help("host", "bind address"))
    serve.add_argument("--port", type=int, help=_setting_help("port", "bind port"))
    serve.add_argument("--model", help=_setting_help("model", "weights file or model .yaml"))
    serve.add_argument("--device", help=_setting_help("device", "auto, cpu or cuda:N"))
    serve.add_argument("--cameras-file", help=_setting_help("cameras_file", "YAML camera list"))
    serve.set_defaults(func=_serve)

    analyze = commands.add_parser(
        "analyze", help="print quality signals of image files or folders", formatter_class=DEFAULTS
    )
    analyze.add_argument("paths", nargs="+", type=Path)
    analyze.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    analyze.add_argument("--analysis-size", type=int, default=640, help="longer side the image is resized to")
    analyze.add_argument(
        "--report",
        type=Path,
        help="write one self-contained HTML report instead of the table: distributions per signal, the worst images",
    )
    analyze.add_argument(
        "--thresholds-file",
        type=Path,
        help="thresholds drawn in the report (default: VISION_THRESHOLDS_FILE or the packaged file)",
    )
    analyze.set_defaults(func=_analyze)

    baseline = commands.add_parser("baseline", help="reference baselines for drift detection (docs/drift.md)")
    baseline_commands = baseline.add_subparsers(dest="baseline_command", required=True)
    build = baseline_commands.add_parser(
        "build",
        help="measure and detect reference images or a recorded stream and write the source's baseline JSON, "
        "with day, twilight and night regimes",
        formatter_class=DEFAULTS,
    )
    build.add_argument(
        "paths",
        nargs="+",
        help="image files, folders (searched recursively), video files (a recorded stream) or a stream URL",
    )
    build.add_argument("--source", required=True, help="source id the baseline is for, e.g. a camera id")
    build.add_argument(
        "--out", type=Path, help="output file (default: <VISION_BASELINE_DIR or ./baselines>/<source>.json)"
    )
    build.add_argument("--model", help=_setting_help("model", "weights file"))
    build.add_argument("--device", help=_setting_help("device", "auto, cpu or cuda:N"))
    build.add_argument(
        "--single-regime", action="store_true", help="one regime for all frames (no day / twilight / night split)"
    )
    build.add_argument("--hours", help="hour-of-day buckets, their start hours, e.g. 6,18 (regimes day-h06 ...)")
    build.add_argument(
        "--night-brightness", type=float, default=NIGHT_BRIGHTNESS, help="frames darker than this are night"
    )
    build.add_argument(
        "--day-brightness",
        type=float,
        default=DAY_BRIGHTNESS,
        help="colour frames darker than this are twilight (0 = no brightness criterion)",
    )
    build.add_argument(
        "--day-noise",
        default="auto",
        help="colour frames grainier than this noise_sigma are twilight: a number, 'auto' (1.5 times "
        f"the camera's daylight grain, at least {MIN_DAY_NOISE}) or 'off'",
    )
    build.add_argument(
        "--monochrome-colourfulness",
        type=float,
        default=MONOCHROME_COLOURFULNESS,
        help="frames less colourful than this are the IR night mode",
    )
    build.add_argument("--every", type=float, default=1.0, help="videos and streams: one frame per this many seconds")
    build.add_argument(
        "--max-frames", type=int, default=0, help="videos and streams: at most this many frames each (0 = all)"
    )
    build.add_argument(
        "--start",
        help="a recorded video's start, ISO 8601 local time (default: file time minus duration); for hours",
    )
    build.set_defaults(func=_baseline_build)

    demo = commands.add_parser(
        "demo",
        help="post a day-night-day sequence of real photos to a running service (sources must be in VISION_SOURCES)",
        formatter_class=DEFAULTS,
    )
    demo.add_argument("--url", default="http://127.0.0.1:8000", help="base URL of the running service")
    demo.add_argument(
        "--sources", default="street,parking,entrance", help="comma-separated source ids, all in VISION_SOURCES"
    )
    demo.add_argument("--cycle-minutes", type=float, default=10.0, help="length of one day-night-day cycle")
    demo.add_argument("--rate", type=float, default=2.0, help="images per second over all sources (0 = no pause)")
    demo.add_argument("--count", type=int, default=0, help="stop after this many images (0: run until Ctrl-C)")
    demo.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0: no limit)")
    demo.add_argument("--bad-every", type=int, default=40, help="send a truncated JPEG every N images (0 = never)")
    demo.add_argument("--api-key", help="X-API-Key, when the service has one (default: $VISION_API_KEY)")
    demo.set_defaults(func=_demo)

    export = commands.add_parser(
        "export",
        help="write a source's evidence frames and a JSON/CSV manifest into a folder, ready for labelling",
        formatter_class=DEFAULTS,
    )
    origin = export.add_mutually_exclusive_group(required=True)
    origin.add_argument("--url", help="base URL of a running service, e.g. http://127.0.0.1:8000")
    origin.add_argument("--store", type=Path, help="a service's evidence directory (VISION_EVIDENCE_DIR), read only")
    export.add_argument("--source", required=True, help="source id, e.g. a camera id")
    export.add_argument(
        "--kind",
        default="all",
        help="comma-separated kinds (latest, darkest, blurriest, noisiest, lowest_confidence, "
        "low_light, noisy, blurry, drift, no_detections, low_confidence) or all",
    )
    export.add_argument("--out", type=Path, required=True, help="folder to write the frames and manifest.json/.csv to")
    export.add_argument("--api-key", help="X-API-Key, when the service has one (default: $VISION_API_KEY)")
    export.set_defaults(func=_export)

    return parser


def _serve(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from vision_service.api.main import create_app
    from vision_service.api.server import serve
    from vision_service.core.config import Settings
    from vision_service.thresholds import ThresholdsError

    overrides = {
        key: value
        for key, value in {
            "host": args.host,
            "port": args.port,
            "model": args.model,
            "device": args.device,
            "cameras_file": args.cameras_file,
        }.items()
        if value is not None
    }
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        print(f"vision-service: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        app = create_app(settings)
    except (ThresholdsError, OSError) as exc:  # an unusable thresholds file or evidence directory
        print(f"vision-service: cannot start: {exc}", file=sys.stderr)
        return 2
    state = app.state.service
    serve(app, settings, on_drain=lambda: setattr(state, "draining", True))
    return 0


def _analyze(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    import quality
    from vision_service.drift.reference import IMAGE_SUFFIXES, expand
    from vision_service.engine.decode import decode_image
    from vision_service.errors import ImageRejected

    report = _folder_report(args) if args.report else None
    if report is None and args.report:
        return 2
    files = [Path(p) for p in expand([str(p) for p in args.paths], IMAGE_SUFFIXES)]
    show_progress = any(p.is_dir() for p in args.paths) and sys.stderr.isatty()
    rows: list[dict[str, Any]] = []
    analysed = failed = 0
    for path in tqdm(files, desc="analyzing", unit="img", disable=not show_progress, file=sys.stderr):
        try:
            bgr = decode_image(path.read_bytes(), max_bytes=1 << 31, max_pixels=1 << 31)
        except (OSError, ImageRejected) as exc:
            failed += 1
            print(f"{path}: {exc}", file=sys.stderr)
            if report is not None:
                report.fail(_relative(path, args.paths), str(exc))
            continue
        measured = quality.measure(bgr, analysis_size=args.analysis_size)
        analysed += 1
        row = {"path": str(path), "width": bgr.shape[1], "height": bgr.shape[0], **measured.as_dict()}
        if args.json:
            print(json.dumps(row), flush=True)
        if report is not None:
            report.add(_relative(path, args.paths), measured)
        elif not args.json:
            rows.append(row)
    if report is not None:
        args.report.write_text(report.html(_report_root(args.paths)), encoding="utf-8")
        print(f"wrote {args.report}: {analysed} images, {failed} unreadable", file=sys.stderr)
    elif rows:
        _print_table(rows)
    return 1 if failed and not analysed else 0


def _folder_report(args: argparse.Namespace) -> Any:
    """The report collector, with the thresholds its charts mark; None (after a message) when they are unusable."""
    from vision_service.core.config import Settings
    from vision_service.folder_report import FolderReport
    from vision_service.thresholds import ThresholdsError, load_thresholds

    try:
        thresholds = load_thresholds(args.thresholds_file or Settings().thresholds_file)
    except ThresholdsError as exc:
        print(f"vision-service: {exc}", file=sys.stderr)
        return None
    return FolderReport(", ".join(str(p) for p in args.paths), thresholds)


def _report_root(paths: Sequence[Path]) -> Path:
    """The folder report paths are relative to: the one folder given, else the current directory."""
    return paths[0] if len(paths) == 1 and paths[0].is_dir() else Path(".")


def _relative(path: Path, paths: Sequence[Path]) -> str:
    root = _report_root(paths)
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _print_table(rows: list[dict[str, Any]]) -> None:
    short = {
        "brightness": "bright",
        "sharpness": "sharp",
        "noise_sigma": "noise",
        "underexposed_ratio": "under",
        "overexposed_ratio": "over",
        "colourfulness": "colour",
    }
    from quality import REPORT_FIELDS

    columns = list(REPORT_FIELDS)
    headers = ["path", "size", *(short.get(c, c) for c in columns)]
    width = max(len(headers[0]), *(len(r["path"]) for r in rows))
    print(f"{headers[0]:<{width}}  {headers[1]:>11}" + "".join(f"  {h:>9}" for h in headers[2:]))
    for r in rows:
        size = f"{r['width']}x{r['height']}"
        values = "".join(f"  {r[c]:>9.1f}" if c in WHOLE_COLUMNS else f"  {r[c]:>9.3f}" for c in columns)
        print(f"{r['path']:<{width}}  {size:>11}{values}")


def _baseline_build(args: argparse.Namespace) -> int:
    from datetime import datetime

    from pydantic import ValidationError

    from vision_service.core.config import SOURCE_ID_PATTERN, Settings
    from vision_service.drift import baseline_path, save_baseline
    from vision_service.drift.reference import build_baseline, expand, is_stream
    from vision_service.engine.factory import ModelLoadError
    from vision_service.regimes import RegimeRule, parse_hours

    if not SOURCE_ID_PATTERN.match(args.source):
        print(f"vision-service: --source {args.source!r} must match {SOURCE_ID_PATTERN.pattern}", file=sys.stderr)
        return 2
    try:
        rule = None
        fit_noise = args.day_noise == "auto"
        if not args.single_regime:
            rule = RegimeRule(
                monochrome_colourfulness=args.monochrome_colourfulness,
                night_brightness=args.night_brightness,
                day_brightness=args.day_brightness,
                day_noise=None if args.day_noise in ("auto", "off") else float(args.day_noise),
                hours=parse_hours(args.hours) if args.hours else (),
            )
        start = datetime.fromisoformat(args.start).timestamp() if args.start else None
    except ValueError as exc:
        print(f"vision-service: {exc}", file=sys.stderr)
        return 2
    overrides = {key: value for key, value in {"model": args.model, "device": args.device}.items() if value}
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        print(f"vision-service: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    inputs = expand(args.paths)
    if not inputs:
        print(f"vision-service: no image or video files in {', '.join(args.paths)}", file=sys.stderr)
        return 1
    shown = ", ".join("a stream" if is_stream(p) else str(Path(p).resolve()) for p in args.paths)
    origin = f"{shown} ({len(inputs)} inputs)"
    try:
        result = build_baseline(
            inputs,
            args.source,
            settings,
            origin=origin,
            rule=rule,
            every_seconds=args.every,
            max_frames=args.max_frames,
            start=start,
            fit_noise=fit_noise,
            progress=True,
        )
    except (ModelLoadError, ValueError) as exc:
        print(f"vision-service: {exc}", file=sys.stderr)
        return 1
    for what, reason in result.failed:
        print(f"{what}: {reason}", file=sys.stderr)
    out = args.out or baseline_path(settings.baseline_dir or Path("baselines"), args.source)
    save_baseline(result.baseline, out)
    baseline = result.baseline
    print(f"wrote {out}: baseline of source {args.source} from {baseline.frames} frames")
    if baseline.rule is not None:
        print(f"regime rule: {baseline.rule.to_json()}")
    for regime, reference in sorted(baseline.regimes.items()):
        note = "" if reference.frames >= 500 else "  (fewer than 500 frames: drift scores will be noisy)"
        print(f"regime {regime}: {reference.frames} frames{note}")
        for signal, stats in reference.summary().items():
            print(f"  {signal:<20} mean {stats['mean']:>10.4g}   p05 {stats['p05']:>10.4g}   p95 {stats['p95']:>10.4g}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    import os

    from vision_service.clients.demo import DemoConfig, DemoError, run

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = DemoConfig(
        url=args.url,
        sources=[s.strip() for s in args.sources.split(",") if s.strip()],
        cycle_seconds=args.cycle_minutes * 60.0,
        rate=args.rate,
        count=args.count,
        duration=args.duration,
        bad_every=args.bad_every,
        api_key=args.api_key or os.environ.get("VISION_API_KEY") or None,
    )
    try:
        stats = run(config, report=lambda line: print(line, flush=True))
    except DemoError as exc:
        print(f"vision-service demo: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    print(
        f"sent {stats.sent} images: {stats.processed} processed, {stats.rejected} rejected "
        f"({dict(stats.rejected_by_reason)}), {stats.detections} detections"
    )
    return 0 if stats.processed else 1


def _export(args: argparse.Namespace) -> int:
    import os

    from vision_service.clients.export import ExportError, export_from_service, export_from_store, parse_kinds

    try:
        kinds = parse_kinds(args.kind)
        if args.url:
            key = args.api_key or os.environ.get("VISION_API_KEY") or None
            result = export_from_service(args.url, args.source, kinds, args.out, api_key=key, report=print)
        else:
            result = export_from_store(args.store, args.source, kinds, args.out, report=print)
    except ExportError as exc:
        print(f"vision-service export: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {result.frames} frames and {result.manifest} (+ manifest.csv) to {result.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
