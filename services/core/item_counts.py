"""The bandit's counts in Redis, read by each api replica without reading them all.

Impressions, likes and dislikes live in three hashes of one field per item (services/common/
keys.py). Every write that changes counts also logs the items it changed, as one entry (a
ZSET member: the item ids joined by newlines, scored with a new sequence number); a replica
keeps a cursor into the log and reads only the items changed since. Reading all three
hashes of a 25k-item catalogue every two seconds held Redis and the replica's event loop
for tens of milliseconds: the serving benchmark's p99.

One entry per write, not one per item: a page of /recs counts ten impressions, and stamping
ten items in a ZSET of the whole catalogue (a skiplist re-score each) was 40% of the Redis
time of a prefetched /recs (60 of 100 us with the impressions themselves; about 3 us now).

An entry of impressions alone (every /recs page) starts with the line ``IMPRESSIONS_ONLY``:
for its items a replica reads the impressions again, not the likes and dislikes, which
only ratings change (under /recs load that was two thirds of a refresh's reads and
decoding, the decoding in a thread holding the GIL beside the event loop).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from services.core.bandit import ItemStats

# Log entries kept: older ones are cut, and a replica whose cursor is older than the cut
# reads every count again (the cut counts as a wipe for it). Checked every 1,000 entries.
CHANGE_LOG_KEPT = 100_000

# First line of a log entry whose items changed only their impressions (a control
# character: never an item id).
IMPRESSIONS_ONLY = "\x01"

# Lua, shared by every script that changes counts: log ``items`` as one entry with a new
# sequence number (marked IMPRESSIONS_ONLY when ``impressions_only``). KEYS of the caller
# hold the counter, the log and the wipe mark.
MARK_CHANGED = f"""
local function mark_changed(seq_key, changes_key, reset_key, items, impressions_only)
  if #items == 0 then return end
  local seq = redis.call('INCR', seq_key)
  local entry = table.concat(items, '\\n')
  if impressions_only then entry = '{IMPRESSIONS_ONLY}\\n' .. entry end
  redis.call('ZADD', changes_key, seq, entry)
  if seq % 1000 == 0 and seq > {CHANGE_LOG_KEPT} then
    local cut = seq - {CHANGE_LOG_KEPT}
    redis.call('ZREMRANGEBYSCORE', changes_key, '-inf', '(' .. cut)
    if tonumber(redis.call('GET', reset_key) or '0') < cut then
      redis.call('SET', reset_key, cut)
    end
  end
end
"""

# Log entries read per page (ServingStore._changes_since), and items per HMGET: one HMGET
# of 500 items holds Redis about a millisecond on a busy machine (2,000: up to 4.5 ms).
COUNT_PAGE = 500


# (item id, count) pairs as Redis answered them: a missing count is None.
RawCounts = Sequence[tuple[bytes | str, bytes | str | None]]


@dataclass(frozen=True)
class CountChanges:
    """Counts as stored, for some items: all of them (``complete``) or those changed.

    Kept as Redis answered them and decoded on first use: the store runs on the event
    loop, the replica decodes in a worker thread (tens of thousands of counts, ~10 ms).
    """

    cursor: int
    complete: bool
    raw: tuple[RawCounts, RawCounts, RawCounts]  # impressions, likes, dislikes
    users: float

    @cached_property
    def impressions(self) -> dict[str, float]:
        return decode_counts(self.raw[0])

    @cached_property
    def likes(self) -> dict[str, float]:
        return decode_counts(self.raw[1])

    @cached_property
    def dislikes(self) -> dict[str, float]:
        return decode_counts(self.raw[2])


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


def decode_counts(pairs: RawCounts) -> dict[str, float]:
    """Item id -> count; a missing field (None, from HMGET) counts 0."""
    return {_text(item): float(count or 0) for item, count in pairs}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
