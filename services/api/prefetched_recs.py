"""GET /recs/{user_id} answered below the framework.

Most /recs requests pop their page from a list ranked by an earlier request (one Redis
step, no scoring), so the framework's routing, validation and serialisation would be most
of their cost. This ASGI layer answers plain requests (an id and at most ``k``) with the
same Recommender the route uses; everything else (explain, another query, an id the route
would refuse, a Redis error) goes on to the FastAPI route, which applies the full rules and
answers errors, so both paths share one contract.
"""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace
from typing import Any

from redis.exceptions import RedisError
from starlette.types import ASGIApp, Receive, Scope, Send

from services.common.events import MAX_ID_LENGTH, refused_id
from services.core.recommender import Recommender

log = logging.getLogger(__name__)

PATH_PREFIX = "/recs/"
# What MetricsMiddleware labels the request with (the route's own template).
ROUTE = SimpleNamespace(path_format="/recs/{user_id}")


def parse_request(path: str, query: bytes, default_k: int, max_k: int) -> tuple[str, int] | None:
    """(user id, k) for a plain request the route would accept; None for anything else."""
    user_id = path[len(PATH_PREFIX) :]
    if not 1 <= len(user_id) <= MAX_ID_LENGTH or refused_id(user_id):
        return None
    if not query:
        return user_id, default_k
    if not query.startswith(b"k=") or not query[2:].isdigit() or len(query) > 8:
        return None
    k = int(query[2:])
    return (user_id, k) if 1 <= k <= max_k else None


class PrefetchedRecs:
    def __init__(self, app: ASGIApp, default_k: int, max_k: int) -> None:
        self.app = app
        self.default_k = default_k
        self.max_k = max_k

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or not scope["path"].startswith(PATH_PREFIX)
        ):
            await self.app(scope, receive, send)
            return
        parsed = parse_request(scope["path"], scope["query_string"], self.default_k, self.max_k)
        recommender: Recommender | None = getattr(scope["app"].state, "recommender", None)
        if parsed is None or recommender is None:
            await self.app(scope, receive, send)
            return
        user_id, k = parsed
        try:
            result = await recommender.recommend(user_id, k)
        except RedisError:
            # Nothing was recorded: the route tries again and answers 503 with the reason.
            await self.app(scope, receive, send)
            return
        except Exception:
            # Never a dropped connection: the route ranks again and, if it fails the same
            # way, the error handlers answer with a JSON body.
            log.exception("lean /recs path failed for %r; handing over to the route", user_id)
            await self.app(scope, receive, send)
            return
        scope["route"] = ROUTE
        await _send_json(send, {"item_ids": result.item_ids})


async def _send_json(send: Send, content: dict[str, Any]) -> None:
    # Byte for byte what FastAPI's JSONResponse sends for the same content.
    body = json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-length", str(len(body)).encode()),
                (b"content-type", b"application/json"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
