"""The api's view of Redis: catalogue, user history, impressions and the model pointer."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio import Redis

from services.common.keys import Keys, encoded
from services.common.lua import CLEAR_IF_EQUAL
from services.core.batched_script import BatchedScript
from services.core.feedback import DEFAULT_TYPES, FeedbackType, Role
from services.core.item_counts import COUNT_PAGE, IMPRESSIONS_ONLY, MARK_CHANGED, CountChanges
from services.core.ratings import decode_rating

# (item id, count) pairs gathered page by page: what CountChanges keeps undecoded.
type RawCountList = list[tuple[bytes, bytes | None]]

# The header of a prefetched list: "<1 if ranked with a model, else 0>|<catalogue version>".
# A list ranked for another catalogue (a /cleanup, new items) is never served.
_HEADER_CHECK = """
local function stale(header, model, version)
  local with_model, ranked_for = string.match(header or '', '^(%d)|(%d+)$')
  if not with_model or ranked_for ~= version then return true end
  return with_model == '0' and redis.call('EXISTS', model) == 1
end
"""

# Lua, shared by both scripts that answer a page: which of ``entries`` (source letter + item
# id) the user may be shown, in order, at most ``k``: neither shown nor rated, nor taken
# twice. One SMISMEMBER and one HMGET for all of them (Redis 6.2+): a call from Lua costs
# about a microsecond of Redis time of its own, and a page used to make three per entry.
_SHOWABLE = """
local function showable(entries, k, shown, rated, out, taken)
  if #entries == 0 then return end
  local items = {}
  for i, entry in ipairs(entries) do items[i] = string.sub(entry, 2) end
  local seen = redis.call('SMISMEMBER', shown, unpack(items))
  local ratings = redis.call('HMGET', rated, unpack(items))
  for i, item in ipairs(items) do
    if #out >= k then return end
    if seen[i] ~= 1 and not ratings[i] and not taken[item] then
      taken[item] = true
      out[#out + 1] = entries[i]
    end
  end
end

-- Record the answered entries as shown and count them as impressions of their items.
local function record(out, shown, impressions, seq_key, changes_key, reset_key)
  local items = {}
  for i, entry in ipairs(out) do items[i] = string.sub(entry, 2) end
  redis.call('SADD', shown, unpack(items))
  for _, item in ipairs(items) do redis.call('HINCRBY', impressions, item, 1) end
  mark_changed(seq_key, changes_key, reset_key, items, true)
end
"""

# Next k entries of the user's prefetched list that are still neither shown nor rated,
# recorded as shown (and counted as impressions of their items) in the same step. False
# when the list cannot fill k (the caller ranks afresh) or is stale (another catalogue, or
# ranked before any model existed and one does now); for a user with no list, no
# impressions and no ratings, {0, catalogue version, model version}.
_POP_PREFETCHED = (
    _HEADER_CHECK
    + MARK_CHANGED
    + _SHOWABLE
    + """
local queue, shown, rated, model = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local k = tonumber(ARGV[1])
local version = redis.call('GET', KEYS[5]) or '0'
local length = redis.call('LLEN', queue)
if length == 0 and redis.call('EXISTS', shown) == 0 and redis.call('EXISTS', rated) == 0 then
  return {0, version, redis.call('GET', model) or ''}
end
if length <= k then return false end
local header = redis.call('LPOP', queue)
if stale(header, model, version) then
  redis.call('DEL', queue)
  return false
end
local out, taken = {}, {}
while #out < k do
  local entries = redis.call('LPOP', queue, k - #out)
  if not entries then break end
  showable(entries, k, shown, rated, out, taken)
end
if #out < k then
  redis.call('DEL', queue)
  return false
end
record(out, shown, KEYS[6], KEYS[7], KEYS[8], KEYS[9])
redis.call('EXPIRE', shown, tonumber(ARGV[2]))
if redis.call('LLEN', queue) > 0 then redis.call('LPUSH', queue, header) end
return out
"""
)

# Answer from ranked entries atomically: the first k entries neither shown nor rated by now
# (a parallel request for the same user may have shown some meanwhile) are recorded as
# shown, counted as impressions and returned; the entries after them become the user's
# prefetched list, unless a rating arrived since the history was read (the list would
# ignore it) or the catalogue changed since the ranking (a /cleanup).
# ARGV: reset shown (1/0), feedback seq seen, k, header, list ttl, catalogue version ranked
# with, shown ttl, user id, the entries joined by newlines (ids hold no control characters):
# one argument instead of fifty is most of the client's encoding work of a ranked answer.
_RECORD_SHOWN = (
    MARK_CHANGED
    + _SHOWABLE
    + """
local shown, queue, seq, rated = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
if ARGV[1] == '1' then redis.call('DEL', shown) end
local ranked = {}
for entry in string.gmatch(ARGV[9], '[^\\n]+') do ranked[#ranked + 1] = entry end
local k = tonumber(ARGV[3])
local out, taken = {}, {}
local i = 1
while #out < k and i <= #ranked do
  local last = math.min(#ranked, i + k - #out - 1)
  local entries = {}
  for j = i, last do entries[#entries + 1] = ranked[j] end
  showable(entries, k, shown, rated, out, taken)
  i = last + 1
end
if #out > 0 then
  record(out, shown, KEYS[5], KEYS[8], KEYS[9], KEYS[10])
  redis.call('EXPIRE', shown, tonumber(ARGV[7]))
  redis.call('PFADD', KEYS[7], ARGV[8])
end
redis.call('DEL', queue)
if i <= #ranked and (redis.call('GET', seq) or '0') == ARGV[2]
   and (redis.call('GET', KEYS[6]) or '0') == ARGV[6] then
  for first = i, #ranked, 500 do
    redis.call('RPUSH', queue, unpack(ranked, first, math.min(first + 499, #ranked)))
  end
  redis.call('LPUSH', queue, ARGV[4])
  redis.call('EXPIRE', queue, tonumber(ARGV[5]))
end
return out
"""
)


@dataclass(frozen=True)
class NewUser:
    """A user with no history at all, and the versions to rank them with."""

    catalogue_version: int
    model_version: str | None


@dataclass(frozen=True)
class UserView:
    """What one /recs request needs, read in a single round trip (ratings newest first)."""

    liked: list[str]
    disliked: list[str]
    # Rated with a watched or excluded feedback type (or one no longer configured): never
    # shown again, no other signal.
    excluded: list[str]
    shown: set[str]
    catalogue_version: int
    model_version: str | None
    feedback_seq: str


class ServingStore:
    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        *,
        prefetch_ttl: float = 10.0,
        impressions_ttl: float = 30 * 24 * 3600.0,
        types: dict[str, FeedbackType] | None = None,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.roles = {
            action.encode(): feedback.role for action, feedback in (types or DEFAULT_TYPES).items()
        }
        self.prefetch_ttl = max(1, round(prefetch_ttl))
        self.impressions_ttl = max(1, round(impressions_ttl))
        self._pop_prefetched = BatchedScript(redis, _POP_PREFETCHED)
        # The keys a page pop names besides the user's own (every /recs of a known user pops).
        self._pop_shared_keys = encoded(
            keys.model_current,
            keys.catalogue_version,
            keys.item_impressions,
            keys.item_counts_seq,
            keys.item_counts_changes,
            keys.item_counts_reset,
        )
        (self._pop_ttl,) = encoded(self.impressions_ttl)
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
        by_role: dict[Role, list[tuple[float, str]]] = {role: [] for role in Role}
        for item, value in rated.items():
            action, ts = decode_rating(value)
            role = self.roles.get(action, Role.EXCLUDED)
            by_role[role].append((ts, item.decode()))

        def newest_first(role: Role) -> list[str]:
            return [item for _, item in sorted(by_role[role], reverse=True)]

        return UserView(
            liked=newest_first(Role.POSITIVE),
            disliked=newest_first(Role.NEGATIVE),
            excluded=newest_first(Role.WATCHED) + newest_first(Role.EXCLUDED),
            shown={s.decode() for s in shown},
            catalogue_version=int(cat_version or 0),
            model_version=model_version.decode() if model_version else None,
            feedback_seq=seq.decode() if seq else "0",
        )

    async def pop_prefetched(self, user_id: str, k: int) -> list[bytes] | NewUser | None:
        """The next k prefetched entries (source letter + item id), now recorded as shown;
        NewUser for a user with no history at all; None when the user must be ranked."""
        keys = self.keys
        own: list[str | bytes] = [
            keys.prefetched(user_id),
            keys.shown(user_id),
            keys.rated(user_id),
        ]
        reply = await self._pop_prefetched(own + self._pop_shared_keys, [k, self._pop_ttl])
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
        entries: Sequence[str],
        k: int,
        *,
        reset: bool,
        catalogue_version: int,
        with_model: bool = False,
        feedback_seq: str = "0",
        list_ttl: float | None = None,
    ) -> list[bytes]:
        """Answer the first k ``entries`` (source letter + item id) still neither shown nor
        rated, recorded as shown (after emptying the shown set if ``reset``); the entries
        after them become the user's next items for ``list_ttl`` seconds (default: the
        store's ``prefetch_ttl``). Returns the answered entries."""
        reply = await self._record_shown(
            keys=[
                self.keys.shown(user_id),
                self.keys.prefetched(user_id),
                self.keys.feedback_seq(user_id),
                self.keys.rated(user_id),
                self.keys.item_impressions,
                self.keys.catalogue_version,
                self.keys.users_shown,
                self.keys.item_counts_seq,
                self.keys.item_counts_changes,
                self.keys.item_counts_reset,
            ],
            args=[
                "1" if reset else "0",
                feedback_seq,
                k,
                f"{1 if with_model else 0}|{catalogue_version}",
                self.prefetch_ttl if list_ttl is None else max(1, round(list_ttl)),
                catalogue_version,
                self.impressions_ttl,
                user_id,
                "\n".join(entries),
            ],
        )
        return list(reply)

    async def item_count_changes(self, cursor: int | None) -> CountChanges:
        """The bandit's evidence: counts of the items changed since ``cursor`` (all of them
        when ``cursor`` is None or the counts were wiped since), and how many users were
        shown anything."""
        if cursor is not None:
            changed = await self._changes_since(cursor)
            if changed is not None:
                return changed
        # Everything, as of one sequence number (a transaction: no write falls in between).
        pipe = self.redis.pipeline(transaction=True)
        pipe.get(self.keys.item_counts_seq)
        for key in (self.keys.item_impressions, self.keys.item_likes, self.keys.item_dislikes):
            pipe.hgetall(key)
        pipe.pfcount(self.keys.users_shown)
        seq, impressions, likes, dislikes, users = await pipe.execute()
        return CountChanges(
            int(seq or 0),
            True,
            (list(impressions.items()), list(likes.items()), list(dislikes.items())),
            float(users),
        )

    async def _changes_since(self, cursor: int) -> CountChanges | None:
        """The counts of the items changed after ``cursor``; None when the counts were
        wiped since, or the log cut past the cursor (the caller reads them all).

        Not one script: under load nearly every item changes between two reads, and one
        script reading 15k items held Redis for 30 ms, every other client waiting (the
        serving benchmark's p99). Pages of a few commands let other clients in between.
        The counts are read after the log up to ``seq``: a count changed meanwhile is read
        already new, and logged after ``seq``, read again next time.
        """
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(self.keys.item_counts_seq)
        pipe.get(self.keys.item_counts_reset)
        seq_raw, reset_raw = await pipe.execute()
        seq, reset = int(seq_raw or 0), int(reset_raw or 0)
        if reset > cursor:
            return None
        # Items whose impressions changed, and those whose likes or dislikes may have.
        shown: dict[bytes, None] = {}
        rated: dict[bytes, None] = {}
        low = cursor
        while low < seq:
            page = cast(
                list[tuple[bytes, float]],
                await self.redis.zrangebyscore(
                    self.keys.item_counts_changes,
                    f"({low}",
                    seq,
                    start=0,
                    num=COUNT_PAGE,
                    withscores=True,
                ),
            )
            # Split at C speed and deduplicated page by page, between the reads: the whole
            # log at once (12,000 entries under load) held the event loop for 12-20 ms
            # every refresh, every request in flight waiting.
            for into, entries in zip((shown, rated), _by_kind(page), strict=True):
                if entries:
                    into.update(dict.fromkeys(b"\n".join(entries).split(b"\n")))
            if len(page) < COUNT_PAGE:
                break
            low = int(page[-1][1])
        # An untagged entry may be of any count (an older api wrote its impressions so).
        shown.update(rated)
        counts: tuple[RawCountList, RawCountList, RawCountList] = ([], [], [])
        for items, keys, lists in (
            (list(shown), (self.keys.item_impressions,), counts[:1]),
            (list(rated), (self.keys.item_likes, self.keys.item_dislikes), counts[1:]),
        ):
            for start in range(0, len(items), COUNT_PAGE):
                chunk = items[start : start + COUNT_PAGE]
                pipe = self.redis.pipeline(transaction=False)
                for key in keys:
                    pipe.hmget(key, chunk)
                for pairs, values in zip(lists, await pipe.execute(), strict=True):
                    pairs.extend(zip(chunk, values, strict=True))
        users = await self.redis.pfcount(self.keys.users_shown)
        return CountChanges(seq, False, counts, float(users))

    async def colikes(self, item_ids: Sequence[str], limit: int) -> list[list[tuple[str, float]]]:
        """Per item, its ``limit`` most co-liked items with their counts."""
        if not item_ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for item in item_ids:
            pipe.zrevrange(self.keys.colikes(item), 0, limit - 1, withscores=True)
        replies = await pipe.execute()
        return [[(_text(other), float(count)) for other, count in reply] for reply in replies]

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
        replies = await pipe.execute()
        # HSET's own count of new fields: each id once, however often the batch repeats
        # it, and right when another request added some of them meanwhile.
        return int(replies[0]) if mapping else 0

    async def catalogue_size(self) -> int:
        return int(await self.redis.hlen(self.keys.catalogue))

    async def raw_catalogue(self) -> tuple[int, dict[bytes, bytes]]:
        """The catalogue version and its items' stored genres (``parse_catalogue``)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.get(self.keys.catalogue_version)
        pipe.hgetall(self.keys.catalogue)
        version, raw = await pipe.execute()
        return int(version or 0), raw

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
        # The epoch and the catalogue version survive, so they only ever grow (no cache
        # keyed by them can collide across a wipe); so does the cleanup mark, which the
        # ingester lifts once it has cut the log.
        await self.redis.incr(self.keys.epoch)
        await self.redis.incr(self.keys.catalogue_version)
        kept = {
            self.keys.epoch.encode(),
            self.keys.cleanup_pending.encode(),
            self.keys.catalogue_version.encode(),
            self.keys.item_counts_seq.encode(),
        }
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
        # After the counts are gone: every replica's copy is older and is read again whole.
        reset_at = await self.redis.incr(self.keys.item_counts_seq)
        await self.redis.set(self.keys.item_counts_reset, reset_at)
        return deleted


def parse_catalogue(raw: dict[bytes, bytes]) -> dict[str, list[str]]:
    """Item id -> genres, from the catalogue hash as stored by ``add_items``."""
    return {item.decode(): json.loads(genres) for item, genres in raw.items()}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


_IMPRESSIONS_ONLY = IMPRESSIONS_ONLY.encode() + b"\n"


def _by_kind(page: list[tuple[bytes, float]]) -> tuple[list[bytes], list[bytes]]:
    """A change log page's entries of impressions alone (tag dropped), and the others."""
    tag = len(_IMPRESSIONS_ONLY)
    shown = [entry[tag:] for entry, _ in page if entry.startswith(_IMPRESSIONS_ONLY)]
    if len(shown) == len(page):
        return shown, []
    return shown, [entry for entry, _ in page if not entry.startswith(_IMPRESSIONS_ONLY)]
