"""The rankings shared by users with no history: their own for the first users of a copy of
the counts, ranked one at a time off the event loop."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from services.core.new_user_variants import NewUserVariants


class Ranker:
    """Counts the rankings and how many ran at once."""

    def __init__(self, seconds: float = 0.01, fail: bool = False) -> None:
        self.seconds = seconds
        self.fail = fail
        self.calls = 0
        self.running = 0
        self.most_at_once = 0
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            self.calls += 1
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
            number = self.calls
        time.sleep(self.seconds)
        with self._lock:
            self.running -= 1
        if self.fail:
            raise RuntimeError("ranking failed")
        return number


def test_the_first_users_of_a_copy_get_their_own_ranking_one_at_a_time() -> None:
    async def scenario() -> tuple[list[int], Ranker]:
        pool: NewUserVariants[int] = NewUserVariants(3)
        ranker = Ranker()
        state, counts = object(), object()
        # Thirty users at once: three rankings, one after the other; the rest share them.
        served = await asyncio.gather(*(pool.get(state, counts, 10, ranker) for _ in range(30)))
        # Each later user gets one of the three at random (all three: missed with p ~ 1e-10).
        served += [await pool.get(state, counts, 10, ranker) for _ in range(60)]
        return served, ranker

    served, ranker = asyncio.run(scenario())
    assert served[:3] == [1, 2, 3]
    assert ranker.calls == 3
    assert ranker.most_at_once == 1
    assert set(served[30:]) == {1, 2, 3}


def test_a_new_copy_of_the_counts_or_a_new_state_gets_new_rankings() -> None:
    async def scenario() -> list[int]:
        pool: NewUserVariants[int] = NewUserVariants(1)
        ranker = Ranker()
        state, other_state, old, new = object(), object(), object(), object()
        return [
            await pool.get(state, old, 10, ranker),
            await pool.get(state, old, 10, ranker),
            await pool.get(state, new, 10, ranker),
            await pool.get(state, new, 20, ranker),  # another page size
            await pool.get(other_state, new, 10, ranker),
        ]

    assert asyncio.run(scenario()) == [1, 1, 2, 3, 4]


def test_a_failed_ranking_reaches_its_users_and_the_next_one_ranks_again() -> None:
    async def scenario() -> tuple[int, Ranker]:
        pool: NewUserVariants[int] = NewUserVariants(1)
        ranker = Ranker(fail=True)
        state, counts = object(), object()
        with pytest.raises(RuntimeError):
            await pool.get(state, counts, 10, ranker)
        ranker.fail = False
        return await pool.get(state, counts, 10, ranker), ranker

    value, ranker = asyncio.run(scenario())
    assert value == 2 and ranker.calls == 2
