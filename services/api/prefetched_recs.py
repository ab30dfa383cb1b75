"""GET /recs/{user_id} answered in front of the framework.

Most /recs requests pop their page from a list ranked by an earlier request (one Redis
step, no scoring), so the framework's routing, validation and serialisation would be most
of their cost. This FastLane handler (services/common/fast_lane.py) answers plain requests
(an id and at most ``k``) with the same Recommender the route uses; everything else
(explain, another query, an id the route would refuse, a Redis error) goes on to the
FastAPI route, which applies the full rules and answers errors, so both paths share one
contract."""

from __future__ import annotations

import logging
from types import SimpleNamespace

from redis.exceptions import RedisError
from starlette.types import Receive, Scope

from services.common.events import MAX_ID_LENGTH, refused_id
from services.common.fast_lane import Answer, Decline
from services.core.recommender import Recommender

log = logging.getLogger(__name__)

PATH_PREFIX = "/recs/"
# What the metrics label the request with (the route's own template).
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
    """The api's FastLane handler (services.common.fast_lane)."""

    method = "GET"
    route = ROUTE

    def __init__(self, default_k: int, max_k: int) -> None:
        self.default_k = default_k
        self.max_k = max_k

    def takes(self, path: str) -> bool:
        return path.startswith(PATH_PREFIX)

    async def answer(self, scope: Scope, receive: Receive) -> Answer | Decline:
        parsed = parse_request(scope["path"], scope["query_string"], self.default_k, self.max_k)
        recommender: Recommender | None = getattr(scope["app"].state, "recommender", None)
        if parsed is None or recommender is None:
            return Decline(receive)
        user_id, k = parsed
        try:
            result = await recommender.recommend(user_id, k)
        except RedisError:
            # Nothing was recorded: the route tries again and answers 503 with the reason.
            return Decline(receive)
        except Exception:
            # Never a dropped connection: the route ranks again and, if it fails the same
            # way, the error handlers answer with a JSON body.
            log.exception("lean /recs path failed for %r; handing over to the route", user_id)
            return Decline(receive)
        return Answer.json(200, {"item_ids": result.item_ids})
