"""JSON bodies with a repeated key are refused (422), not read as "the last one wins".

Two parsers that resolve a repeated key differently (a proxy or WAF taking the first, the
service the last) see two different requests in one body; the standard says names
"SHOULD be unique". FastAPI parses bodies with ``json.loads`` (last wins): routes built
with :class:`StrictJSONRoute` parse them with a hook that refuses duplicates instead, and
the error comes back as FastAPI's usual ``json_invalid`` 422.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute


class DuplicateKeyError(ValueError):
    """An object in the body names a key twice."""


def reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` for ``json.loads``: a dict, unless a key repeats."""
    result = dict(pairs)
    if len(result) != len(pairs):
        repeated = [key for key, count in Counter(key for key, _ in pairs).items() if count > 1]
        raise DuplicateKeyError(f"duplicate key {repeated[0]!r} in a JSON object")
    return result


def loads_strict(body: bytes | str) -> Any:
    """``json.loads`` that raises ``json.JSONDecodeError`` on a repeated key."""
    try:
        return json.loads(body, object_pairs_hook=reject_duplicate_keys)
    except DuplicateKeyError as error:
        raise json.JSONDecodeError(str(error), "", 0) from error


class StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads_strict(await self.body())
        return self._json


class StrictJSONRoute(APIRoute):
    """An APIRoute whose JSON body refuses repeated keys (``APIRouter(route_class=...)``)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict_handler
