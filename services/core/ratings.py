"""The ratings key family: one user's latest action per item (``user:<id>:rated``, values
"<action>|<timestamp>"), and what the ingest step counts from them: per-item likes and
watched counts, live co-likes, each user's latest likes. Written only by ``APPLY_RATINGS``
(the trainer's ingest step), read through ``decode_rating`` (the api)."""

from __future__ import annotations

from services.core.item_counts import MARK_CHANGED

# Latest action wins per (user, item): an older event arriving late never overrides. The
# user's prefetched list is dropped and the feedback counter bumped, so the next /recs ranks
# with this rating (and a ranking already under way does not store a list without it).
# When a user's action on an item changes (a first rating included), the item's counts move
# with it by the actions' roles (services/core/feedback.py: positive counts as a like,
# negative and watched as watched; the bandit's evidence, unchanged by redelivered events),
# and a new positive is counted as co-liked with the user's latest positives.
# A call pairs at most ``budget`` co-likes: a history of hundreds of likes sent in one event
# must not hold Redis for long (its later likes are then counted, not paired).
# KEYS: rated, prefetched list, feedback seq, active users, item likes, item dislikes,
# recent likes, item counts seq, item counts changes, item counts reset. ARGV: (item,
# action, ts)..., roles ("like=positive,..."), pair budget, co-likes kept, recent likes
# kept, co-likes key prefix, user, latest ts.
APPLY_RATINGS = (
    MARK_CHANGED
    + """
local key, recent = KEYS[1], KEYS[7]
local counted = {}
local roles = {}
for action, role in string.gmatch(ARGV[#ARGV - 6], '([^=,]+)=([^,]+)') do
  roles[action] = role
end
local by_role = {positive = KEYS[5], negative = KEYS[6], watched = KEYS[6]}
local function counter(action)
  if action then return by_role[roles[action] or ''] end
end
local prefix = ARGV[#ARGV - 2]
local recent_cap, colikes_kept = tonumber(ARGV[#ARGV - 3]), tonumber(ARGV[#ARGV - 4])
local budget = tonumber(ARGV[#ARGV - 5])
redis.call('DEL', KEYS[2])
redis.call('INCR', KEYS[3])
redis.call('ZADD', KEYS[4], 'GT', ARGV[#ARGV], ARGV[#ARGV - 1])
local function colike(a, b)
  local zset = prefix .. a
  redis.call('ZINCRBY', zset, 1, b)
  -- Trimmed in bulk once twice the size kept: the rarest co-likes go.
  if redis.call('ZCARD', zset) > 2 * colikes_kept then
    redis.call('ZREMRANGEBYRANK', zset, 0, -(colikes_kept + 1))
  end
end
for i = 1, #ARGV - 7, 3 do
  local item, action, ts = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  local old = redis.call('HGET', key, item)
  local old_ts, old_action = -1, nil
  if old then
    old_action = string.match(old, '^(.-)|')
    old_ts = tonumber(string.match(old, '|(.*)$'))
  end
  if ts >= old_ts then
    redis.call('HSET', key, item, action .. '|' .. ARGV[i + 2])
    if old_action ~= action then
      local before, after = counter(old_action), counter(action)
      if before ~= after then
        if before then redis.call('HINCRBY', before, item, -1) end
        if after then redis.call('HINCRBY', after, item, 1) end
        counted[#counted + 1] = item
      end
      if roles[action] == 'positive' and budget > 0 then
        for _, other in ipairs(redis.call('LRANGE', recent, 0, budget - 1)) do
          if other ~= item then
            colike(item, other)
            colike(other, item)
            budget = budget - 1
          end
        end
        redis.call('LPUSH', recent, item)
        redis.call('LTRIM', recent, 0, recent_cap - 1)
      end
    end
  end
end
mark_changed(KEYS[8], KEYS[9], KEYS[10], counted)
return 1
"""
)

# A new like is counted as co-liked with this many of the user's latest likes (bounds the
# work of one like), each item keeps about this many co-liked items (the most co-liked), and
# one call (one user's events of a batch) pairs at most this many.
RECENT_LIKES_KEPT = 100
COLIKES_KEPT = 500
COLIKE_PAIRS_PER_CALL = 2000


def decode_rating(value: bytes) -> tuple[bytes, float]:
    """(action, timestamp) of a stored rating."""
    action, _, ts = value.partition(b"|")
    return action, float(ts or 0)
