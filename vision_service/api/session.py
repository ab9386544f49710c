"""Browser sessions: the API key, entered once on the live page, kept as an HttpOnly cookie.

A browser cannot add ``X-API-Key`` to an ``<img>`` request or a link. The page's login form POSTs
the key once to ``/v1/session`` (:mod:`vision_service.api.routes.session`); when it is right the
answer sets the cookie :data:`COOKIE`: ``HttpOnly`` (page scripts cannot read it), ``SameSite=Strict``
(no other site's page can make the browser send it), ``Secure`` when the request came over https,
``Path=/``, for :data:`SESSION_SECONDS`.

The cookie does not hold the key: it holds ``<expiry>.<HMAC-SHA256(key, "vision-service session|<expiry>")>``,
so a copied cookie does not reveal the key, expires on its own, and every session ends when the
key changes. It stands in for the key on **safe methods only** (GET, HEAD): pages, JSON and images.
Changing anything (uploads, cameras) still needs the header, so a page of another origin on the
same site (another port of the same host is the same *site*) cannot make a logged-in browser
change anything. A key is never accepted in a URL query.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from fastapi import Request, Response
from pydantic import SecretStr

COOKIE = "vision_session"
SESSION_SECONDS = 7 * 24 * 3600
SAFE_METHODS = frozenset({"GET", "HEAD"})
_CONTEXT = b"vision-service session|"


def _signature(key: SecretStr, expires: int) -> str:
    message = _CONTEXT + str(expires).encode()
    return hmac.new(key.get_secret_value().encode(), message, hashlib.sha256).hexdigest()


def token(key: SecretStr, *, now: float | None = None) -> str:
    """A session token for ``key``, valid for :data:`SESSION_SECONDS` from ``now``."""
    expires = int((time.time() if now is None else now) + SESSION_SECONDS)
    return f"{expires}.{_signature(key, expires)}"


def valid(value: str | None, key: SecretStr, *, now: float | None = None) -> bool:
    """Whether a cookie value is an unexpired token of ``key`` (constant-time comparison)."""
    if not value or value.count(".") != 1:
        return False
    expires_text, signature = value.split(".")
    if not expires_text.isdigit() or len(expires_text) > 12:
        return False
    expires = int(expires_text)
    if expires < (time.time() if now is None else now):
        return False
    return hmac.compare_digest(signature.encode(), _signature(key, expires).encode())


def authenticated_by_cookie(request: Request, key: SecretStr) -> bool:
    """A safe request carrying a valid session cookie."""
    return request.method in SAFE_METHODS and valid(request.cookies.get(COOKIE), key)


def set_cookie(response: Response, request: Request, key: SecretStr) -> None:
    response.set_cookie(
        COOKIE,
        token(key),
        max_age=SESSION_SECONDS,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def clear_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=request.url.scheme == "https")
