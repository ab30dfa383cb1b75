"""The optional admin token that guards destructive and catalogue-changing endpoints."""

from __future__ import annotations

import hmac

from fastapi import Header, HTTPException, status


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
