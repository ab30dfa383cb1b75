"""The bandit's counts in Redis, read by each api replica without reading them all.

Impressions, likes and dislikes live in three hashes of one field per item (services/common/
keys.py). Every write that changes a count also stamps the item in a change log (a ZSET
item -> sequence number); a replica keeps a cursor into it and reads only the items changed
since. Reading all three hashes of a 25k-item catalogue every two seconds held Redis and the
replica's event loop for tens of milliseconds: the serving benchmark's p99.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

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

# Changed items read per page (ServingStore._changes_since): one HMGET of a page holds Redis
# about a millisecond on a busy machine (2,000: up to 4.5 ms).
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
