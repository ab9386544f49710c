"""Optional API key: when ``VISION_API_KEY`` is set, protected routes need it in ``X-API-Key``.

Reading routes (GET, HEAD) also accept the browser session cookie the live page's login sets
(:mod:`vision_service.api.session`); nothing accepts a key in the URL.
"""

from __future__ import annotations

import hmac

from fastapi import Request
from fastapi.security import APIKeyHeader
from pydantic import SecretStr

from vision_service.api import session
from vision_service.api.state import ServiceState
from vision_service.errors import ApiError, Reason

API_KEY_HEADER = "X-API-Key"
# auto_error=False: a missing key must give our JSON error, not FastAPI's 403.
_scheme = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="Required when VISION_API_KEY is set.")


def key_matches(sent: str, key: SecretStr) -> bool:
    """Whether ``sent`` is the configured key, compared in constant time (no timing hint of how much matched)."""
    return hmac.compare_digest(sent.encode(), key.get_secret_value().encode())


async def require_api_key(request: Request) -> None:
    """Refuse with 401 unless the configured key was sent (constant-time comparison), or, on a GET or
    HEAD request, a valid session cookie."""
    state: ServiceState = request.app.state.service
    expected = state.settings.api_key
    if expected is None:
        return
    sent = await _scheme(request)
    if sent is None and session.authenticated_by_cookie(request, expected):
        return
    sent = sent or ""
    if not key_matches(sent, expected):
        raise ApiError(Reason.UNAUTHORIZED, f"missing or wrong {API_KEY_HEADER} header")


async def require_metrics_key(request: Request) -> None:
    """With ``VISION_METRICS_REQUIRE_KEY``: the key, as ``X-API-Key`` or ``Authorization: Bearer``
    (what Prometheus' scrape config sends with ``authorization: {credentials: ...}``)."""
    state: ServiceState = request.app.state.service
    expected = state.settings.api_key
    if expected is None or not state.settings.metrics_require_key:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    sent = token.strip() if scheme.lower() == "bearer" else (await _scheme(request) or "")
    if not key_matches(sent, expected):
        raise ApiError(Reason.UNAUTHORIZED, f"missing or wrong {API_KEY_HEADER} or Authorization: Bearer header")
