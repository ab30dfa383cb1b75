"""The bandit's counts in Redis, read by each api replica without reading them all.

Impressions, likes and dislikes live in three hashes of one field per item (services/common/
keys.py). Every write that changes a count also stamps the item in a change log (a ZSET
item -> sequence number); a replica keeps a cursor into it and reads only the items changed
since. Reading all three hashes of a 25k-item catalogue every two seconds held Redis and the
replica's event loop for tens of milliseconds: the serving benchmark's p99.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.core.bandit import ItemStats

# Lua, shared by every script that changes counts: stamp ``items`` with one new sequence
# number. KEYS of the caller hold the counter and the log.
MARK_CHANGED = """
local function mark_changed(seq_key, changes_key, items)
  if #items == 0 then return end
  local seq = redis.call('INCR', seq_key)
  for _, item in ipairs(items) do redis.call('ZADD', changes_key, seq, item) end
end
"""

# The counts of every item changed after ARGV[1] (a cursor), and the new cursor; {seq, 0}
# when the counts were wiped after the cursor (the caller reads them all).
# KEYS: seq, reset, changes, impressions, likes, dislikes, users shown.
READ_CHANGED = """
local seq = tonumber(redis.call('GET', KEYS[1]) or '0')
local cursor = tonumber(ARGV[1])
if tonumber(redis.call('GET', KEYS[2]) or '0') > cursor then return {seq, 0} end
local items = redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. cursor, '+inf')
local out = {seq, items}
for k = 4, 6 do
  local values = {}
  -- HMGET in chunks: unpack has a limit on its number of results.
  for i = 1, #items, 1000 do
    local chunk = redis.call('HMGET', KEYS[k], unpack(items, i, math.min(i + 999, #items)))
    for j = 1, #chunk do values[#values + 1] = chunk[j] or '0' end
  end
  out[#out + 1] = values
end
out[#out + 1] = redis.call('PFCOUNT', KEYS[7])
return out
"""


@dataclass(frozen=True)
class CountChanges:
    """Counts as stored, for some items: all of them (``complete``) or those changed."""

    cursor: int
    complete: bool
    impressions: dict[str, float]
    likes: dict[str, float]
    dislikes: dict[str, float]
    users: float


def apply_changes(
    stats: ItemStats | None, changes: CountChanges, item_index: dict[str, int]
) -> ItemStats:
    """``stats`` with ``changes`` applied (new arrays; ``stats`` is shared with readers).
    Ids outside ``item_index`` are ignored."""
    if changes.complete or stats is None:
        return ItemStats.from_counts(
            item_index, changes.impressions, changes.likes, changes.dislikes, changes.users
        )
    arrays = []
    for current, updates in (
        (stats.impressions, changes.impressions),
        (stats.likes, changes.likes),
        (stats.dislikes, changes.dislikes),
    ):
        array = current.copy()
        for item, count in updates.items():
            index = item_index.get(item)
            if index is not None:
                array[index] = count
        arrays.append(array)
    return ItemStats(arrays[0], arrays[1], arrays[2], changes.users)


def decode_counts(values: dict[bytes, bytes] | list[tuple[bytes, bytes]]) -> dict[str, float]:
    pairs = values.items() if isinstance(values, dict) else values
    return {_text(item): float(count) for item, count in pairs}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
