"""Each api replica's copy of the bandit's counts, read incrementally, on both backends: after
any mix of impressions, ratings and wipes it equals a read of every count."""

from __future__ import annotations

import asyncio
import random

import numpy as np
import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from services.common.keys import Keys
from services.common.settings import Settings
from services.core import serving_store
from services.core.bandit import BanditPolicy
from services.core.item_counts import CHANGE_LOG_KEPT, CountChanges, apply_changes
from services.core.live_counts import ItemStatsCache
from services.core.serving_state import ServingState
from services.core.serving_store import ServingStore
from tests.factories import event, feedback_state

pytestmark = pytest.mark.backends("real", "embedded")

ITEMS = [f"i{n}" for n in range(40)]


def _state(version: int) -> ServingState:
    return ServingState.build(version, {item: [] for item in ITEMS}, None)


async def _show(store: ServingStore, user: str, items: list[str]) -> None:
    entries = [f"p{item}" for item in items]
    await store.record_impressions(user, entries, len(entries), reset=False, catalogue_version=1)


def test_changes_since_a_cursor_are_only_the_items_whose_counts_moved(settings: Settings) -> None:
    async def scenario() -> tuple[CountChanges, CountChanges, CountChanges]:
        redis = Redis.from_url(settings.redis_server_url)
        try:
            store = ServingStore(redis, Keys(settings.key_prefix))
            await _show(store, "ann", ["i1", "i2"])
            everything = await store.item_count_changes(None)
            await _show(store, "bob", ["i2", "i3"])
            since = await store.item_count_changes(everything.cursor)
            unchanged = await store.item_count_changes(since.cursor)
            return everything, since, unchanged
        finally:
            await redis.aclose()

    everything, since, unchanged = asyncio.run(scenario())
    assert everything.complete and everything.impressions == {"i1": 1.0, "i2": 1.0}
    assert not since.complete
    assert since.impressions == {"i2": 2.0, "i3": 1.0}
    # Impressions alone: the likes and dislikes of those items are not read again.
    assert since.likes == {} and since.dislikes == {}
    assert since.cursor > everything.cursor
    assert since.users == 2.0
    assert unchanged.impressions == {} and unchanged.cursor == since.cursor


def test_a_wipe_after_the_cursor_means_reading_everything(settings: Settings) -> None:
    async def scenario() -> CountChanges:
        redis = Redis.from_url(settings.redis_server_url)
        try:
            store = ServingStore(redis, Keys(settings.key_prefix))
            await _show(store, "ann", ["i1"])
            cursor = (await store.item_count_changes(None)).cursor
            await store.wipe()
            await _show(store, "bob", ["i5"])
            return await store.item_count_changes(cursor)
        finally:
            await redis.aclose()

    after = asyncio.run(scenario())
    assert after.complete
    assert after.impressions == {"i5": 1.0}


def test_a_replica_behind_the_cut_of_the_change_log_reads_everything(settings: Settings) -> None:
    keys = Keys(settings.key_prefix)

    async def scenario() -> tuple[CountChanges, CountChanges, int]:
        redis = Redis.from_url(settings.redis_server_url)
        try:
            store = ServingStore(redis, keys)
            await _show(store, "ann", ["i1"])
            behind = (await store.item_count_changes(None)).cursor
            # As if CHANGE_LOG_KEPT more changes were logged since: the next one cuts.
            cut_at = -(-(behind + CHANGE_LOG_KEPT + 2) // 1000) * 1000
            await redis.set(keys.item_counts_seq, cut_at - 1)
            await _show(store, "bob", ["i5"])
            recent = await store.item_count_changes(cut_at - CHANGE_LOG_KEPT)
            return (
                await store.item_count_changes(behind),
                recent,
                await redis.zcard(keys.item_counts_changes),
            )
        finally:
            await redis.aclose()

    after_cut, recent, logged = asyncio.run(scenario())
    assert after_cut.complete and after_cut.impressions == {"i1": 1.0, "i5": 1.0}
    assert not recent.complete and recent.impressions == {"i5": 1.0}
    assert logged == 1  # ann's entry was cut


def test_cleared_ratings_reach_a_replica_that_read_them_before(
    settings: Settings, redis_client: SyncRedis
) -> None:
    ratings = feedback_state(settings, redis_client)
    ratings.apply([event("ann", ["i1", "i2"], ["like", "dislike"])])

    async def scenario() -> tuple[CountChanges, CountChanges]:
        redis = Redis.from_url(settings.redis_server_url)
        try:
            store = ServingStore(redis, Keys(settings.key_prefix))
            before = await store.item_count_changes(None)
            await asyncio.to_thread(ratings.clear_ratings)
            return before, await store.item_count_changes(before.cursor)
        finally:
            await redis.aclose()

    before, after = asyncio.run(scenario())
    assert before.likes == {"i1": 1.0} and before.dislikes == {"i2": 1.0}
    assert after.complete and after.likes == {} and after.dislikes == {}


def test_an_incremental_copy_equals_a_full_read_after_any_mix_of_writes(
    settings: Settings, redis_client: SyncRedis
) -> None:
    rng = random.Random(7)
    ratings = feedback_state(settings, redis_client)
    state = _state(1)

    async def scenario() -> None:
        redis = Redis.from_url(settings.redis_server_url)
        try:
            store = ServingStore(redis, Keys(settings.key_prefix))
            cache = ItemStatsCache(store, max_age=0.0, policy=BanditPolicy())
            for step in range(60):
                user = f"u{rng.randrange(12)}"
                items = rng.sample(ITEMS, 3)
                if rng.random() < 0.5:
                    await _show(store, user, items)
                else:
                    actions = [rng.choice(["like", "dislike"]) for _ in items]
                    rated = event(user, items, actions, ts=float(step + 1))
                    await asyncio.to_thread(ratings.apply, [rated])
                if step == 30:
                    await asyncio.to_thread(ratings.clear_ratings)
                copy = (await cache.refresh(state)).stats
                full = apply_changes(None, await store.item_count_changes(None), state.item_index)
                for mine, truth in (
                    (copy.impressions, full.impressions),
                    (copy.likes, full.likes),
                    (copy.dislikes, full.dislikes),
                ):
                    np.testing.assert_array_equal(mine, truth)
        finally:
            await redis.aclose()

    asyncio.run(scenario())


def test_changes_are_read_page_by_page_and_none_is_missed(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages of 3 over stamps of 2, 2, 5 (more than a page) and 1 items; between the first
    two pages another client shows the first two items again."""
    monkeypatch.setattr(serving_store, "COUNT_PAGE", 1)

    async def scenario() -> tuple[CountChanges, CountChanges, CountChanges]:
        redis = Redis.from_url(settings.redis_server_url)
        try:
            store = ServingStore(redis, Keys(settings.key_prefix))
            cursor = (await store.item_count_changes(None)).cursor
            for user, items in (("a", ITEMS[0:2]), ("b", ITEMS[2:4]), ("c", ITEMS[4:9])):
                await _show(store, user, items)
            await _show(store, "d", ITEMS[9:10])
            read_page = redis.zrangebyscore
            pages = 0

            async def page_then_a_write(*args: object, **kwargs: object) -> object:
                nonlocal pages
                pages += 1
                page = await read_page(*args, **kwargs)  # type: ignore[arg-type]
                if pages == 1:
                    await _show(store, "e", ITEMS[0:2])
                return page

            monkeypatch.setattr(redis, "zrangebyscore", page_then_a_write)
            changes = await store.item_count_changes(cursor)
            monkeypatch.setattr(redis, "zrangebyscore", read_page)
            assert pages >= 4
            return (
                changes,
                await store.item_count_changes(changes.cursor),
                await store.item_count_changes(None),
            )
        finally:
            await redis.aclose()

    changes, again, full = asyncio.run(scenario())
    # Every changed item, those shown during the read already with their new count.
    assert changes.impressions == {item: 2.0 if item in ITEMS[:2] else 1.0 for item in ITEMS[:10]}
    # Shown again during the read: stamped after its cursor, so read again next time.
    assert again.impressions == {ITEMS[0]: 2.0, ITEMS[1]: 2.0}
    assert full.impressions == {item: 2.0 if item in ITEMS[:2] else 1.0 for item in ITEMS[:10]}


def test_an_untagged_entry_rereads_every_count_of_its_items(
    settings: Settings, redis_client: SyncRedis
) -> None:
    """An entry as an api of an older version logged its impressions: without the tag."""
    keys = Keys(settings.key_prefix)
    redis_client.hset(keys.item_likes, "i1", 3)

    async def scenario() -> CountChanges:
        redis = Redis.from_url(settings.redis_server_url)
        try:
            store = ServingStore(redis, keys)
            cursor = (await store.item_count_changes(None)).cursor
            redis_client.hincrby(keys.item_impressions, "i1", 1)
            redis_client.zadd(
                keys.item_counts_changes, {"i1": redis_client.incr(keys.item_counts_seq)}
            )
            return await store.item_count_changes(cursor)
        finally:
            await redis.aclose()

    changes = asyncio.run(scenario())
    assert changes.impressions == {"i1": 1.0}
    assert changes.likes == {"i1": 3.0} and changes.dislikes == {"i1": 0.0}
