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
# A user's events of one call pair at most ``budget`` co-likes: a history of hundreds of
# likes sent in one event must not hold Redis for long (its later likes are then counted,
# not paired).
# One call applies several users' events (one call per user: redis-py's packing of each
# call's arguments was most of the ingester's client work). Each user's events arrive as one
# argument, joined by newlines (ids and actions hold no control characters): the user, their
# latest time (for the active set), then (item, action, ts)...; their keys are built here
# from the head and tails of the user key families (services/common/keys.py).
# KEYS: active users, item likes, item dislikes, item counts seq, item counts changes, item
# counts reset. ARGV: roles ("like=positive,..."), pair budget, co-likes kept, recent likes
# kept, co-likes key prefix, user key head, tails of the rated, prefetched list, feedback seq
# and recent likes keys, then one argument per user.
APPLY_RATINGS = (
    MARK_CHANGED
    + """
local roles = {}
for action, role in string.gmatch(ARGV[1], '([^=,]+)=([^,]+)') do
  roles[action] = role
end
local by_role = {positive = KEYS[2], negative = KEYS[3], watched = KEYS[3]}
local function counter(action)
  if action then return by_role[roles[action] or ''] end
end
local pair_budget, colikes_kept = tonumber(ARGV[2]), tonumber(ARGV[3])
local recent_cap, prefix, head = tonumber(ARGV[4]), ARGV[5], ARGV[6]
local counted = {}
local function colike(a, b)
  local zset = prefix .. a
  redis.call('ZINCRBY', zset, 1, b)
  -- Trimmed in bulk once twice the size kept: the rarest co-likes go.
  if redis.call('ZCARD', zset) > 2 * colikes_kept then
    redis.call('ZREMRANGEBYRANK', zset, 0, -(colikes_kept + 1))
  end
end
for u = 11, #ARGV do
  local fields = {}
  for field in string.gmatch(ARGV[u], '[^\\n]+') do fields[#fields + 1] = field end
  local user = fields[1]
  local key, recent = head .. user .. ARGV[7], head .. user .. ARGV[10]
  redis.call('DEL', head .. user .. ARGV[8])
  redis.call('INCR', head .. user .. ARGV[9])
  redis.call('ZADD', KEYS[1], 'GT', fields[2], user)
  local budget = pair_budget
  for i = 3, #fields, 3 do
    local item, action, ts = fields[i], fields[i + 1], tonumber(fields[i + 2])
    local old = redis.call('HGET', key, item)
    local old_ts, old_action = -1, nil
    if old then
      old_action = string.match(old, '^(.-)|')
      old_ts = tonumber(string.match(old, '|(.*)$'))
    end
    if ts >= old_ts then
      redis.call('HSET', key, item, action .. '|' .. fields[i + 2])
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
end
mark_changed(KEYS[4], KEYS[5], KEYS[6], counted)
return 1
"""
)

# A new like is counted as co-liked with this many of the user's latest likes (bounds the
# work of one like), each item keeps about this many co-liked items (the most co-liked), and
# one user's events of a batch pair at most this many.
RECENT_LIKES_KEPT = 100
COLIKES_KEPT = 500
COLIKE_PAIRS_PER_CALL = 2000


def decode_rating(value: bytes) -> tuple[bytes, float]:
    """(action, timestamp) of a stored rating."""
    action, _, ts = value.partition(b"|")
    return action, float(ts or 0)
