"""The item bandit and the live co-likes: pure functions over counts."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from services.core.bandit import (
    BanditPolicy,
    ItemStats,
    least_shown,
    posterior,
    thompson_keys,
)
from services.core.colikes import conditional_rates

# Plain means at the population's rate, no optimism: the arithmetic below stays readable.
MEANS = BanditPolicy(sampled_arms=0, watched_weight=0.0, optimism=1.0)


def stats(impressions: list[float], likes: list[float], dislikes: list[float] | None = None):  # type: ignore[no-untyped-def]
    n = len(impressions)
    return ItemStats(
        np.array(impressions, dtype=np.float32),
        np.array(likes, dtype=np.float32),
        np.array(dislikes or [0.0] * n, dtype=np.float32),
    )


def test_the_posterior_moves_with_likes_and_ignored_impressions() -> None:
    a, b = posterior(stats([0, 10, 10, 10], [0, 0, 6, 10]), MEANS)
    mean = a / (a + b)
    # Untried keeps the prior (the population's rate); ignored sinks below it; liked rises.
    assert mean[1] < mean[0] < mean[2] < mean[3]
    assert mean[0] == np.float32((16 + 1) / (30 + 2))


def test_optimism_puts_untried_items_above_mediocre_proven_ones_not_above_the_best() -> None:
    counts = stats([0, 100, 100, 1000], [0, 7, 40, 0])
    rate = (47 + 1) / (1200 + 2)  # the population's reactions per impression, 4%
    plain = posterior(counts, MEANS)
    hopeful = posterior(counts, BanditPolicy(sampled_arms=0, watched_weight=0.0))
    plain_mean, mean = (a / (a + b) for a, b in (plain, hopeful))
    assert mean[0] == np.float32(2 * rate)  # the default: twice the population's rate
    assert plain_mean[1] > plain_mean[0]  # without optimism a 7% item beats an untried one
    assert mean[2] > mean[0] > mean[1] > mean[3]  # with it, only the 40% item does


def test_optimism_never_makes_a_prior_mean_of_one_or_more() -> None:
    # Users reacting to nearly everything: twice the rate would be above 1.
    counts = stats([0, 10, 10], [0, 9, 10])
    a, b = posterior(counts, BanditPolicy(sampled_arms=0, watched_weight=0.0, optimism=5.0))
    assert (b > 0).all() and 0.9 < a[0] / (a[0] + b[0]) < 1.0


def test_exploitation_decays_on_items_many_users_ignored() -> None:
    rng = np.random.default_rng(0)
    keys = [
        thompson_keys(stats([shown, 0, 100], [0, 0, 30]), MEANS, rng)[0] for shown in (1, 10, 100)
    ]
    assert keys[0] > keys[1] > keys[2]
    # ... while an untried item keeps its chance above an item shown a hundred times for nothing.
    last = thompson_keys(stats([100, 0, 100], [0, 0, 30]), MEANS, rng)
    assert last[1] > last[0]


def test_a_dislike_counts_as_watched_when_the_policy_says_so() -> None:
    watched = BanditPolicy(watched_weight=0.3, sampled_arms=0)
    counts = stats([10, 10], [0, 0], [5, 0])
    assert posterior(counts, watched)[0][0] > posterior(counts, MEANS)[0][0]


def test_ties_are_broken_at_random_not_by_position() -> None:
    rng = np.random.default_rng(1)
    tops = {int(np.argmax(thompson_keys(ItemStats.zeros(50), MEANS, rng))) for _ in range(40)}
    assert len(tops) > 10


def test_thompson_draws_rotate_the_liked_items_and_leave_ignored_ones_alone() -> None:
    policy = BanditPolicy(sampled_arms=512, optimism=1.0)
    counts = stats([20, 20, 20, 30], [8, 7, 6, 0])
    rng = np.random.default_rng(2)
    orders = {tuple(np.argsort(-thompson_keys(counts, policy, rng))[:3]) for _ in range(50)}
    assert len(orders) > 1
    mean = thompson_keys(counts, MEANS, rng)[3]
    assert all(abs(thompson_keys(counts, policy, rng)[3] - mean) < 1e-5 for _ in range(5))


def test_a_growing_catalogue_starts_new_items_at_the_prior() -> None:
    index = {"a": 0, "b": 1, "c": 2}
    shown, liked = {"a": 10.0, "b": 10.0, "gone": 5.0}, {"a": 8.0}
    old = ItemStats.from_counts(index, shown, liked, {}, users=10)
    grown = ItemStats.from_counts({**index, "d": 3}, shown, liked, {}, users=10)
    assert len(old) == 3 and len(grown) == 4
    means = thompson_keys(grown, MEANS, np.random.default_rng(3))
    assert abs(means[3] - means[2]) < 1e-5  # untried, old or new alike
    assert means[0] > means[3] > means[1]


@settings(max_examples=60, deadline=None)
@given(
    impressions=st.lists(st.integers(0, 5), min_size=1, max_size=40),
    n=st.integers(0, 45),
    seed=st.integers(0, 1000),
)
def test_least_shown_takes_the_least_shown_first(impressions: list[int], n: int, seed: int) -> None:
    counts = np.array(impressions, dtype=np.float32)
    allowed = np.ones(counts.size, dtype=bool)
    allowed[::3] = False
    picked = least_shown(counts, allowed, n, np.random.default_rng(seed))
    assert len(picked) == min(n, int(allowed.sum())) == len(set(picked.tolist()))
    assert allowed[picked].all()
    rest = np.setdiff1d(np.flatnonzero(allowed), picked)
    if picked.size and rest.size:
        assert counts[picked].max() <= counts[rest].min()


def test_conditional_rates_lift_what_the_users_likes_were_liked_with() -> None:
    population = np.array([0.3, 0.3, 0.3, 0.05], dtype=np.float32)
    likes = np.array([40, 40, 40, 10], dtype=np.float32)
    exposure = np.array([0.8, 0.8, 0.8, 0.5], dtype=np.float32)
    # The user liked item 0; of its 40 likers about 32 saw item 1 and 30 liked it, about 32
    # saw item 2 and 2 liked it; item 3's co-likes were not read.
    neighbours = [(0, np.array([1, 2]), np.array([30.0, 2.0], dtype=np.float32))]
    rates = conditional_rates(population, neighbours, likes, exposure)
    assert rates[1] > population[1] > rates[2]
    assert rates[3] == population[3]
    assert conditional_rates(population, [], likes, exposure) is population


def test_exploration_doubles_while_most_of_the_catalogue_was_never_shown() -> None:
    from services.core.bandit import Snapshot, exploration_rate
    from services.core.ranking import exploration_slots

    fresh = Snapshot.build(ItemStats.zeros(100), MEANS, np.random.default_rng(0))
    assert fresh.untried_share == 1.0
    assert exploration_slots(10, exploration_rate(0.1, fresh.untried_share)) == 2
    tried = Snapshot.build(stats([1.0] * 100, [0.0] * 100), MEANS, np.random.default_rng(0))
    assert exploration_slots(10, exploration_rate(0.1, tried.untried_share)) == 1
