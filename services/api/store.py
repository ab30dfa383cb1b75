"""The api's view of Redis: catalogue, user history, impressions and the model pointer."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from services.api.batched_script import BatchedScript
from services.common.keys import Keys
from services.common.lua import CLEAR_IF_EQUAL

# A prefetched list lives a day: an idle user's list is not kept forever.
PREFETCH_TTL_SECONDS = 24 * 3600

# Next k entries of the user's prefetched list that are still neither shown nor rated,
# recorded as shown in the same step. False when the list cannot fill k (the caller ranks
# afresh) or when it was ranked before any model existed and one does now; for a user with
# no list, no impressions and no ratings, {0, catalogue version, model version}.
_POP_PREFETCHED = """
local queue, shown, rated, model = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local k = tonumber(ARGV[1])
local length = redis.call('LLEN', queue)
if length == 0 and redis.call('EXISTS', shown) == 0 and redis.call('EXISTS', rated) == 0 then
  return {0, redis.call('GET', KEYS[5]) or '0', redis.call('GET', model) or ''}
end
if length <= k then return false end
local header = redis.call('LPOP', queue)
if header == '0' and redis.call('EXISTS', model) == 1 then
  redis.call('DEL', queue)
  return false
end
local out = {}
while #out < k do
  local entry = redis.call('LPOP', queue)
  if not entry then break end
  local item = string.sub(entry, 2)
  if redis.call('SISMEMBER', shown, item) == 0 and redis.call('HEXISTS', rated, item) == 0 then
    out[#out + 1] = entry
  end
end
if #out < k then
  redis.call('DEL', queue)
  return false
end
for i = 1, #out do redis.call('SADD', shown, string.sub(out[i], 2)) end
if redis.call('LLEN', queue) > 0 then redis.call('LPUSH', queue, header) end
return out
"""

# Record what was shown and replace the prefetched list, unless a rating arrived since the
# history was read (its list would ignore that rating; the next request ranks afresh).
# ARGV: reset shown (1/0), feedback seq seen, number shown, header, ttl, shown..., entries...
_RECORD_SHOWN = """
local shown, queue, seq = KEYS[1], KEYS[2], KEYS[3]
if ARGV[1] == '1' then redis.call('DEL', shown) end
local n = tonumber(ARGV[3])
for i = 6, 5 + n do redis.call('SADD', shown, ARGV[i]) end
redis.call('DEL', queue)
if #ARGV > 5 + n and (redis.call('GET', seq) or '0') == ARGV[2] then
  redis.call('RPUSH', queue, ARGV[4])
  for i = 6 + n, #ARGV do redis.call('RPUSH', queue, ARGV[i]) end
  redis.call('EXPIRE', queue, tonumber(ARGV[5]))
end
return 1
"""


@dataclass(frozen=True)
class NewUser:
    """A user with no history at all, and the versions to rank them with."""

    catalogue_version: int
    model_version: str | None


@dataclass(frozen=True)
class UserView:
    """What one /recs request needs, read in a single round trip."""

    liked: list[str]
    disliked: list[str]
    shown: set[str]
    catalogue_version: int
    model_version: str | None
    feedback_seq: str


class ServingStore:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._pop_prefetched = BatchedScript(redis, _POP_PREFETCHED)
        self._record_shown = redis.register_script(_RECORD_SHOWN)
        self._clear_pending = redis.register_script(CLEAR_IF_EQUAL)

    async def ping(self) -> bool:
        return bool(await self.redis.ping())

    async def user_view(self, user_id: str) -> UserView:
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(self.keys.rated(user_id))
        pipe.smembers(self.keys.shown(user_id))
        pipe.get(self.keys.catalogue_version)
        pipe.get(self.keys.model_current)
        pipe.get(self.keys.feedback_seq(user_id))
        rated, shown, cat_version, model_version, seq = await pipe.execute()
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
            feedback_seq=seq.decode() if seq else "0",
        )

    async def pop_prefetched(self, user_id: str, k: int) -> list[bytes] | NewUser | None:
        """The next k prefetched entries (source letter + item id), now recorded as shown;
        NewUser for a user with no history at all; None when the user must be ranked."""
        reply = await self._pop_prefetched(
            [
                self.keys.prefetched(user_id),
                self.keys.shown(user_id),
                self.keys.rated(user_id),
                self.keys.model_current,
                self.keys.catalogue_version,
            ],
            [k],
        )
        if not reply:
            return None
        if reply[0] == 0:
            return NewUser(int(reply[1]), reply[2].decode() or None)
        return list(reply)

    async def recent_users(self, limit: int) -> list[str]:
        """Up to ``limit`` users, latest rating first."""
        users = await self.redis.zrevrange(self.keys.active_users, 0, limit - 1)
        return [user.decode() if isinstance(user, bytes) else str(user) for user in users]

    async def record_impressions(
        self,
        user_id: str,
        items: Sequence[str],
        *,
        reset: bool,
        prefetch: Sequence[str] = (),
        with_model: bool = False,
        feedback_seq: str = "0",
    ) -> None:
        """Add ``items`` to the shown set (after emptying it if ``reset``) and store the
        ``prefetch`` entries as the user's next items."""
        await self._record_shown(
            keys=[
                self.keys.shown(user_id),
                self.keys.prefetched(user_id),
                self.keys.feedback_seq(user_id),
            ],
            args=[
                "1" if reset else "0",
                feedback_seq,
                len(items),
                "1" if with_model else "0",
                PREFETCH_TTL_SECONDS,
                *items,
                *prefetch,
            ],
        )

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

    async def begin_cleanup(self, token: str) -> None:
        """Mark a cleanup under way: no training until the ingester has cut the log."""
        await self.redis.set(self.keys.cleanup_pending, token)

    async def abort_cleanup(self, token: str) -> None:
        """The control message could not be sent: lift this cleanup's mark."""
        await self._clear_pending(keys=[self.keys.cleanup_pending], args=[token])

    async def wipe(self) -> int:
        """Delete every key of this instance and bump the epoch (stale models are refused)."""
        # The epoch survives, so it only ever grows; so does the cleanup mark, which the
        # ingester lifts once it has cut the log.
        await self.redis.incr(self.keys.epoch)
        kept = {self.keys.epoch.encode(), self.keys.cleanup_pending.encode()}
        deleted = 0
        batch: list[bytes] = []
        async for key in self.redis.scan_iter(match=self.keys.pattern, count=1000):
            if key not in kept:
                batch.append(key)
            if len(batch) >= 500:
                deleted += await self.redis.unlink(*batch)
                batch = []
        if batch:
            deleted += await self.redis.unlink(*batch)
        return deleted


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
