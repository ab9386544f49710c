"""GET /: the live page, served by the service itself (no CDN, no build step), and its assets at /ui/.

The page is static: HTML, its script and stylesheet (``vision_service/api/static/page/``) and
uPlot (``static/uplot/``, vendored, MIT). Its data comes from ``/v1/sources`` with the browser's
session (``/v1/session``), so serving it costs nothing while nobody looks, and it holds no data a
login would protect. A strict Content-Security-Policy lets it load scripts, styles, images and
data from this service only.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, Response
from fastapi.responses import FileResponse

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
PAGE = STATIC_DIR / "page" / "index.html"
# The only files served under /ui/: a fixed set, never a path taken from the request.
ASSETS: dict[str, tuple[Path, str]] = {
    "page.js": (STATIC_DIR / "page" / "page.js", "text/javascript; charset=utf-8"),
    "page.css": (STATIC_DIR / "page" / "page.css", "text/css; charset=utf-8"),
    "uPlot.iife.min.js": (STATIC_DIR / "uplot" / "uPlot.iife.min.js", "text/javascript; charset=utf-8"),
    "uPlot.min.css": (STATIC_DIR / "uplot" / "uPlot.min.css", "text/css; charset=utf-8"),
}
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


@router.get("/")
async def page() -> Response:
    return FileResponse(PAGE, media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


@router.get("/ui/{name}")
async def asset(name: str) -> Response:
    found = ASSETS.get(name)
    if found is None:
        raise HTTPException(status_code=404, detail="no such file")
    path, media_type = found
    # no-cache: browsers revalidate (ETag), so an upgraded service serves its new page at once.
    headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    return FileResponse(path, media_type=media_type, headers=headers)
