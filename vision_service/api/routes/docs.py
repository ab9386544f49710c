"""GET /docs (Swagger UI) and /redoc (ReDoc), with their JavaScript and CSS served by the service.

FastAPI's default pages load these assets from a CDN, so they stay blank on a machine without
internet access. The files under ``vision_service/api/static/`` are vendored from the npm packages
``swagger-ui-dist`` and ``redoc`` (versions, licenses and how to update them: its README.md).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
ASSET_PREFIX = "/docs/assets"
# The only files served: a fixed set, never a path taken from the request.
ASSETS = {
    "swagger-ui-bundle.js": STATIC_DIR / "swagger-ui" / "swagger-ui-bundle.js",
    "swagger-ui.css": STATIC_DIR / "swagger-ui" / "swagger-ui.css",
    "favicon-32x32.png": STATIC_DIR / "swagger-ui" / "favicon-32x32.png",
    "redoc.standalone.js": STATIC_DIR / "redoc" / "redoc.standalone.js",
}
OPENAPI_URL = "/openapi.json"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
TITLE = "vision-service"

router = APIRouter(include_in_schema=False)


@router.get("/docs")
async def swagger_ui() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url=OPENAPI_URL,
        title=f"{TITLE} - Swagger UI",
        swagger_js_url=f"{ASSET_PREFIX}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSET_PREFIX}/swagger-ui.css",
        swagger_favicon_url=f"{ASSET_PREFIX}/favicon-32x32.png",
        oauth2_redirect_url=OAUTH2_REDIRECT_URL,
        # No "valid spec" badge: it would ask validator.swagger.io.
        swagger_ui_parameters={"validatorUrl": None},
    )


@router.get(OAUTH2_REDIRECT_URL)
async def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc")
async def redoc() -> HTMLResponse:
    return get_redoc_html(
        openapi_url=OPENAPI_URL,
        title=f"{TITLE} - ReDoc",
        redoc_js_url=f"{ASSET_PREFIX}/redoc.standalone.js",
        redoc_favicon_url=f"{ASSET_PREFIX}/favicon-32x32.png",
        with_google_fonts=False,
    )


@router.get(ASSET_PREFIX + "/{name}")
async def asset(name: str) -> FileResponse:
    path = ASSETS.get(name)
    if path is None:
        raise HTTPException(status_code=404, detail=f"no asset {name!r}")
    # The files change only with the package version: let browsers keep them for a day.
    return FileResponse(path, headers={"Cache-Control": "public, max-age=86400"})
