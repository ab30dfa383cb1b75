"""The api's view of Redis: catalogue, user history, impressions and the model pointer."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from services.common.keys import Keys


@dataclass(frozen=True)
class UserView:
    """What one /recs request needs, read in a single round trip."""

    liked: list[str]
    disliked: list[str]
    shown: set[str]
    catalogue_version: int
    model_version: str | None


class ServingStore:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def ping(self) -> bool:
        return bool(await self.redis.ping())

    async def user_view(self, user_id: str) -> UserView:
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(self.keys.rated(user_id))
        pipe.smembers(self.keys.shown(user_id))
        pipe.get(self.keys.catalogue_version)
        pipe.get(self.keys.model_current)
        rated, shown, cat_version, model_version = await pipe.execute()
        liked: list[str] = []
        disliked: list[str] = []
        for item, value in rated.items():
            (liked if value.startswith(b"like") else disliked).append(item.decode())
        return UserView(
            liked=liked,
            disliked=disliked,
            shown={s.decode() for s in shown},
            catalogue_version=int(cat_version or 0),
            model_version=model_version.decode() if model_version else None,
        )

    async def record_impressions(self, user_id: str, items: Sequence[str], *, reset: bool) -> None:
        if not items and not reset:
            return
        pipe = self.redis.pipeline(transaction=True)
        if reset:
            pipe.delete(self.keys.shown(user_id))
        if items:
            pipe.sadd(self.keys.shown(user_id), *items)
        await pipe.execute()

    async def add_items(
        self,
        items: Sequence[str],
        genres: Sequence[Sequence[str]] | None,
        titles: Sequence[str] | None = None,
    ) -> int:
        """Upsert items (genres and titles replaced when given); returns how many were new."""
        existing = await self.redis.hmget(self.keys.catalogue, list(items))
        mapping: dict[Any, Any] = {}
        for index, (item, old) in enumerate(zip(items, existing, strict=True)):
            if genres is not None:
                mapping[item] = json.dumps(list(genres[index]))
            elif old is None:
                mapping[item] = "[]"
        if not mapping and titles is None:
            return 0
        pipe = self.redis.pipeline(transaction=True)
        if mapping:
            pipe.hset(self.keys.catalogue, mapping=mapping)
            pipe.incr(self.keys.catalogue_version)
        if titles is not None:
            # Titles do not change rankings, so the catalogue version stays.
            pipe.hset(self.keys.titles, mapping=dict(zip(items, titles, strict=True)))
        await pipe.execute()
        return sum(1 for old in existing if old is None)

    async def catalogue_size(self) -> int:
        return int(await self.redis.hlen(self.keys.catalogue))

    async def catalogue(self) -> tuple[int, dict[str, list[str]]]:
        pipe = self.redis.pipeline(transaction=True)
        pipe.get(self.keys.catalogue_version)
        pipe.hgetall(self.keys.catalogue)
        version, raw = await pipe.execute()
        return int(version or 0), {k.decode(): json.loads(v) for k, v in raw.items()}

    async def item_details(self, items: Sequence[str]) -> list[tuple[str, str | None, list[str]]]:
        """(id, title, genres) of the given ids that are in the catalogue, in order."""
        if not items:
            return []
        pipe = self.redis.pipeline(transaction=False)
        pipe.hmget(self.keys.catalogue, list(items))
        pipe.hmget(self.keys.titles, list(items))
        genres, titles = await pipe.execute()
        return [
            (item, _text(title) if title is not None else None, json.loads(raw))
            for item, raw, title in zip(items, genres, titles, strict=True)
            if raw is not None
        ]

    async def model_blob(self, version: str) -> bytes | None:
        blob = await self.redis.get(self.keys.model_blob(version))
        if blob is None:
            return None
        return blob if isinstance(blob, bytes) else blob.encode()

    async def model_info(self) -> dict[str, object] | None:
        raw = await self.redis.get(self.keys.model_info)
        return json.loads(raw) if raw else None

    async def status_notes(self) -> dict[str, str]:
        raw = await self.redis.hgetall(self.keys.status)
        return {_text(k): _text(v) for k, v in raw.items()}

    async def wipe(self) -> int:
        """Delete every key of this instance and bump the epoch (stale models are refused)."""
        # The epoch itself survives, so it only ever grows.
        await self.redis.incr(self.keys.epoch)
        epoch = self.keys.epoch.encode()
        deleted = 0
        batch: list[bytes] = []
        async for key in self.redis.scan_iter(match=self.keys.pattern, count=1000):
            if key != epoch:
                batch.append(key)
            if len(batch) >= 500:
                deleted += await self.redis.unlink(*batch)
                batch = []
        if batch:
            deleted += await self.redis.unlink(*batch)
        return deleted


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
