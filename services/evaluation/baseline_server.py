"""The online benchmark's baseline: the most-liked items not yet shown, random fill.

One in-memory ASGI app serving both the api routes (``/cleanup``, ``/add_items``,
``/recs/{user_id}``) and the collector's ``/interact``, so it can stand where a recsys
deployment stands. Likes are counted per item as they arrive; a user gets the most-liked
items they have not been shown nor rated, then random unseen items. Nothing else: no model,
no genres, no dislikes. Run it with ``python -m services.evaluation.baseline_server --port N``.
"""

from __future__ import annotations

import argparse
import random
from collections import Counter
from dataclasses import dataclass, field

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel


class AddItems(BaseModel):
    item_ids: list[str]
    genres: list[list[str]] | None = None


class Interact(BaseModel):
    user_id: str
    item_ids: list[str]
    actions: list[str]
    timestamp: float | None = None


@dataclass
class State:
    items: list[str] = field(default_factory=list)
    known: set[str] = field(default_factory=set)
    likes: Counter[str] = field(default_factory=Counter)
    liked: set[tuple[str, str]] = field(default_factory=set)  # (user, item), counted once
    seen: dict[str, set[str]] = field(default_factory=dict)  # shown or rated, per user
    rng: random.Random = field(default_factory=lambda: random.Random(0))


def recommend(state: State, user_id: str, k: int) -> list[str]:
    """Most-liked unseen items first, then random unseen ones; recorded as shown."""
    seen = state.seen.setdefault(user_id, set())
    out: list[str] = []
    for item, _ in state.likes.most_common():
        if len(out) == k:
            break
        if item not in seen:
            out.append(item)
    chosen = set(out)
    # Random draws are cheap while most of the catalogue is unseen; a scan ends it otherwise.
    for _ in range(20 * k):
        if len(out) == k or not state.items:
            break
        item = state.rng.choice(state.items)
        if item not in seen and item not in chosen:
            out.append(item)
            chosen.add(item)
    if len(out) < k:
        out += [i for i in state.items if i not in seen and i not in chosen][: k - len(out)]
    seen.update(out)
    return out


def create_app() -> FastAPI:
    app = FastAPI(title="recsys online baseline")
    state = State()

    @app.api_route("/cleanup", methods=["GET", "POST"])
    async def cleanup() -> dict[str, str]:
        nonlocal state
        state = State()
        return {"status": "ok"}

    @app.post("/add_items")
    async def add_items(body: AddItems) -> dict[str, object]:
        if body.genres is not None and len(body.genres) != len(body.item_ids):
            raise HTTPException(422, "genres must be parallel to item_ids")
        new = [i for i in dict.fromkeys(body.item_ids) if i not in state.known]
        state.items += new
        state.known.update(new)
        return {"status": "ok", "added": len(new), "total": len(state.items)}

    @app.get("/recs/{user_id}")
    async def recs(user_id: str, k: int = 10) -> dict[str, list[str]]:
        if not 1 <= k <= 100:
            raise HTTPException(422, "k must be in 1..100")
        return {"item_ids": recommend(state, user_id, k)}

    @app.post("/interact")
    async def interact(body: Interact) -> dict[str, str]:
        if len(body.actions) != len(body.item_ids):
            raise HTTPException(422, "actions must be parallel to item_ids")
        seen = state.seen.setdefault(body.user_id, set())
        for item, action in zip(body.item_ids, body.actions, strict=True):
            seen.add(item)
            if action == "like" and (body.user_id, item) not in state.liked:
                state.liked.add((body.user_id, item))
                state.likes[item] += 1
        return {"status": "ok"}

    @app.get("/healthcheck")
    async def healthcheck() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    p = argparse.ArgumentParser(prog="baseline_server", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args(argv)
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
