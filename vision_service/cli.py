"""``vision-service``: serve the API, or analyze image files from the shell."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vision-service", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="start the detection API (settings from VISION_* env)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--model", help="weights file or model .yaml (VISION_MODEL)")
    serve.add_argument("--device", help="auto, cpu or cuda:N (VISION_DEVICE)")
    serve.add_argument("--cameras-file", help="YAML camera list (VISION_CAMERAS_FILE)")
    serve.set_defaults(func=_serve)

    analyze = commands.add_parser("analyze", help="print quality signals of image files or folders")
    analyze.add_argument("paths", nargs="+", type=Path)
    analyze.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    analyze.add_argument("--analysis-size", type=int, default=640)
    analyze.set_defaults(func=_analyze)

    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


def _serve(args: argparse.Namespace) -> int:
    import uvicorn
    from pydantic import ValidationError

    from vision_service.api.main import create_app
    from vision_service.core.config import Settings

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
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=settings.log_level)
    return 0


def _image_files(paths: Sequence[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            yield path


def _analyze(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    import quality
    from vision_service.decode import decode_image
    from vision_service.errors import InputError

    files = list(_image_files(args.paths))
    show_progress = any(p.is_dir() for p in args.paths) and sys.stderr.isatty()
    rows: list[dict[str, Any]] = []
    failed = 0
    for path in tqdm(files, desc="analyzing", unit="img", disable=not show_progress, file=sys.stderr):
        try:
            frame = decode_image(path.read_bytes(), max_bytes=1 << 31, max_pixels=1 << 31)
        except (OSError, InputError) as exc:
            failed += 1
            print(f"{path}: {exc}", file=sys.stderr)
            continue
        report = quality.measure(frame.pixels, analysis_size=args.analysis_size)
        row = {"path": str(path), "width": frame.width, "height": frame.height, **report.as_dict()}
        if args.json:
            print(json.dumps(row), flush=True)
        rows.append(row)
    if not args.json and rows:
        _print_table(rows)
    return 1 if failed and not rows else 0


def _print_table(rows: list[dict[str, Any]]) -> None:
    columns = ["brightness", "contrast", "sharpness", "noise_sigma", "underexposed_ratio", "overexposed_ratio"]
    headers = ["path", "size", "bright", "contrast", "sharp", "noise", "under", "over"]
    width = max(len(headers[0]), *(len(r["path"]) for r in rows))
    print(f"{headers[0]:<{width}}  {headers[1]:>11}" + "".join(f"  {h:>9}" for h in headers[2:]))
    for r in rows:
        size = f"{r['width']}x{r['height']}"
        values = "".join(f"  {r[c]:>9.1f}" if c == "sharpness" else f"  {r[c]:>9.3f}" for c in columns)
        print(f"{r['path']:<{width}}  {size:>11}{values}")


if __name__ == "__main__":
    raise SystemExit(main())
