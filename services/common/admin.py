"""The optional admin token that guards destructive and catalogue-changing endpoints."""

from __future__ import annotations

import hmac

from fastapi import Header, HTTPException, status


def check_not_cross_site(
    sec_fetch_site: str | None, origin: str | None, allowed_origins: list[str]
) -> None:
    """Refuse (403) an admin request a browser sent on behalf of another site.

    ``GET /cleanup`` stays for the original clients, so an ``<img>`` on any page could wipe
    an instance without a token. Browsers mark such requests ``Sec-Fetch-Site: cross-site``
    and send an ``Origin`` with scripted ones; server-side clients send neither.
    """
    allowed = "*" in allowed_origins or origin in allowed_origins
    if sec_fetch_site == "cross-site" or (origin is not None and not allowed):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "admin requests are not accepted from another site's page",
        )


def check_admin_token(expected: str | None, given: str | None) -> None:
    """Raise 401 unless no token is configured or the given one matches (constant time)."""
    if expected is None:
        return
    if given is None or not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or wrong X-Admin-Token header",
            headers={"WWW-Authenticate": "X-Admin-Token"},
        )


AdminTokenHeader = Header(default=None, alias="X-Admin-Token", include_in_schema=True)
