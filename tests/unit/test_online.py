"""The online cold-start benchmark: its pure parts, and one run against the baseline app.

Synthetic data only: nothing here downloads MovieLens.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
from pathlib import Path

import httpx
import numpy as np
import pytest

from services.evaluation import online
from services.evaluation.baseline_server import State, create_app, recommend
from services.evaluation.datasets import Ratings
from services.evaluation.harness import main as evaluate
from services.evaluation.online import (
    SECTION_BEGIN,
    SECTION_END,
    ColdUser,
    Comparison,
    Outcome,
    Protocol,
    Response,
    Target,
    UserState,
    build_catalogue,
    figures,
    judge,
    learning_curve,
    record,
    run_cold,
    sample_users,
    scenario,
    with_online_section,
)
from services.evaluation.simulator import parser
from services.evaluation.synthetic import SyntheticConfig, generate

UUID4_HEX = re.compile(r"^[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}$")


def tiny() -> Ratings:
    """Three users, four items; u0 rates i0 (5) and i1 (2); u1 rates i2 (4); u2 rates i0 (1)."""
    return Ratings(
        name="tiny",
        user_ids=["u0", "u1", "u2"],
        item_ids=["i0", "i1", "i2", "i3"],
        users=np.array([0, 0, 1, 2], dtype=np.int32),
        items=np.array([0, 1, 2, 0], dtype=np.int32),
        ratings=np.array([5, 2, 4, 1], dtype=np.float32),
        timestamps=np.zeros(4),
        genres={"i0": ["Drama"], "i1": ["Comedy", "Drama"], "i2": ["Horror"], "i3": []},
    )


# --- catalogue and users


def test_catalogue_pads_with_opaque_ids_and_borrowed_genres() -> None:
    ratings = tiny()
    catalogue = build_catalogue(ratings, 50, random.Random(1))
    assert catalogue.size == 50 == len(set(catalogue.item_ids))
    assert all(UUID4_HEX.match(i) for i in catalogue.item_ids)
    # Every dataset item is in, under its opaque id, with its own genres.
    assert set(catalogue.opaque) == set(ratings.item_ids)
    for item, opaque in catalogue.opaque.items():
        assert catalogue.genres[opaque] == ratings.genres[item]
    padding = set(catalogue.item_ids) - set(catalogue.opaque.values())
    assert len(padding) == 46
    # Padding genres are copies of the dataset's non-empty genre lists.
    lists = [["Drama"], ["Comedy", "Drama"], ["Horror"]]
    assert all(catalogue.genres[i] in lists for i in padding)
    # Shuffled: the dataset items are not all at the front.
    positions = sorted(catalogue.item_ids.index(o) for o in catalogue.opaque.values())
    assert positions != [0, 1, 2, 3]


def test_catalogue_smaller_than_the_dataset_is_refused() -> None:
    with pytest.raises(ValueError, match="catalogue size"):
        build_catalogue(tiny(), 3, random.Random(0))


def test_users_are_sampled_with_replacement_under_fresh_ids() -> None:
    ratings = tiny()
    catalogue = build_catalogue(ratings, 10, random.Random(0))
    users = sample_users(ratings, catalogue, 30, random.Random(2))
    assert len(users) == 30
    assert len({u.user_id for u in users}) == 30  # fresh ids even for repeated sources
    assert {u.source for u in users} == {"u0", "u1", "u2"}  # 30 draws from 3: all appear
    o = catalogue.opaque
    expected = {
        "u0": {o["i0"]: True, o["i1"]: False},  # 5 stars like, 2 stars dislike
        "u1": {o["i2"]: True},  # 4 stars is a like
        "u2": {o["i0"]: False},
    }
    for user in users:
        assert user.truth == expected[user.source]
        assert UUID4_HEX.match(user.user_id)


def test_same_seed_same_scenario() -> None:
    ratings = tiny()
    a = scenario(ratings, Protocol(users=5, catalogue_size=20, seed=3))
    b = scenario(ratings, Protocol(users=5, catalogue_size=20, seed=3))
    c = scenario(ratings, Protocol(users=5, catalogue_size=20, seed=4))
    assert a == b
    assert a.catalogue.item_ids != c.catalogue.item_ids


def test_random_precision_is_likes_over_the_catalogue() -> None:
    ratings = tiny()
    scene = scenario(ratings, Protocol(users=40, catalogue_size=20, seed=0))
    likes = [sum(u.truth.values()) for u in scene.users]  # 1 for u0 and u1, 0 for u2
    assert online.random_precision(scene) == pytest.approx(np.mean(likes) / 20)


# --- judging one list


def test_judge_counts_hits_repeats_rated_and_reactions() -> None:
    truth = {"a": True, "b": False, "c": True, "d": True}
    state = UserState.of(ColdUser("u", "s", truth))
    first = judge(["a", "b", "x", "y"], truth, state, k=4)
    assert (first.hits, first.repeats, first.rated_returned, first.short) == (1, 0, 0, False)
    assert first.reactions == [("a", "like"), ("b", "dislike")]
    # Relevant: a, c, d; a at rank 1 of an ideal 3-hit list.
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert first.ndcg == pytest.approx(1 / ideal)
    record(state, ["a", "b", "x", "y"], first)
    assert state.hit and state.wanted == {"c", "d"} and state.rated == {"a", "b"}

    # a and b were rated (and shown); x was shown; c is new and wanted; z twice in one list.
    second = judge(["a", "b", "x", "c", "z", "z"], truth, state, k=6)
    assert second.hits == 1  # c only: a is liked already, no credit twice
    assert second.repeats == 3 + 1
    assert second.rated_returned == 2
    assert second.short  # five distinct items for k = 6
    assert second.reactions == [("c", "like")]  # rated items are not sent again


def test_hit_rate_is_per_user_not_per_list() -> None:
    catalogue = build_catalogue(tiny(), 10, random.Random(0))
    stats = online.OnlineStats()
    # User 0 hit once in three lists; user 1 never.
    stats.lists = [["a"], ["b"], ["c"], ["d"]]
    stats.precision = [0.1, 0.0, 0.0, 0.0]
    stats.ndcg = [0.5, 0.0, 0.0, 0.0]
    stats.repeats, stats.rated_returned = 2, 1
    stats.responses = [
        Response(1.0, 0, 0, 1, 0.5),
        Response(2.0, 0, 0, 0, 0.0),
        Response(3.0, 0, 1, 0, 0.0),
        Response(4.0, 1, 0, 0, 0.0),
    ]
    out = figures(Outcome("x", stats, [True, False]), catalogue, k=10)
    assert out["hit rate"] == 0.5
    assert out["precision@10"] == pytest.approx(0.025)
    assert out["precision@10 session 1"] == pytest.approx(1 / 30)
    assert out["precision@10 session 2"] == 0.0
    assert out["repeats"] == 2 and out["rated returned"] == 1
    # None of a..d is in the catalogue: no coverage, four unknown items.
    assert out["coverage"] == 0.0 and out["unknown items"] == 4


def test_learning_curve_buckets() -> None:
    responses = [
        Response(0.0, 0, 0, 0, 0.0),
        Response(4.9, 1, 0, 2, 0.5),
        Response(15.0, 2, 0, 1, 0.1),
        Response(20.0, 3, 0, 0, 0.0),  # the end of the span falls in the last bucket
    ]
    curve = learning_curve(responses, k=10, buckets=4, span=20.0)
    assert [(b["start"], b["end"]) for b in curve] == [(0, 5), (5, 10), (10, 15), (15, 20)]
    assert [b["responses"] for b in curve] == [2, 0, 0, 2]
    assert curve[0]["precision"] == pytest.approx(0.1) and curve[0]["hit share"] == 0.5
    assert curve[1]["precision"] is None and curve[1]["hit share"] is None
    assert curve[3]["precision"] == pytest.approx(0.05)


def test_ratios_and_the_markdown_section() -> None:
    result = Comparison(Protocol(users=2, buckets=2), "tiny", "now")
    for name, hits in (("baseline", [True, False]), ("recsys", [True, True])):
        stats = online.OnlineStats()
        stats.lists = [["a"]]
        stats.precision, stats.ndcg = [0.2], [0.3]
        stats.responses = [Response(0.5, 0, 0, 2, 0.3)]
        stats.run_seconds = 2.0
        stats.recs_latency = [0.004]
        result.add(Outcome(name, stats, hits), build_catalogue(tiny(), 10, random.Random(0)))
    ratios = result.ratios()
    assert ratios["hit rate"] == 2.0 and ratios["precision@10"] == 1.0
    assert "errors" not in ratios and "repeats" not in ratios
    data = result.as_json()
    assert data["runs"]["recsys"]["curve"][1]["precision"] is None
    section = online.markdown(result, "bench/online.py --users 2", "quality-online.png")
    assert section.startswith(SECTION_BEGIN) and section.rstrip().endswith(SECTION_END)
    assert "| hit rate | 0.5000 | 1.0000 | 2.0000 |" in section

    doc = with_online_section("# Quality\n\ntables\n", section)
    assert doc.count(SECTION_BEGIN) == 1 and doc.startswith("# Quality")
    again = with_online_section(doc, section.replace("1.0000 | 2.0000", "0.9000 | 1.8000"))
    assert again.count(SECTION_BEGIN) == 1 and "1.8000" in again and "| 2.0000" not in again


def test_repeats_are_pooled_and_listed_each_on_its_own() -> None:
    result = Comparison(Protocol(users=2, buckets=2, seed=7), "tiny", "now")
    catalogue = build_catalogue(tiny(), 10, random.Random(0))
    # Repeat 0: recsys 0.2 vs 0.1; repeat 1: 0.1 vs 0.3.
    for repeat, pairs in enumerate(((0.1, 0.2), (0.3, 0.1))):
        for name, precision in zip(("baseline", "recsys"), pairs, strict=True):
            stats = online.OnlineStats()
            stats.lists = [["a"]]
            stats.precision, stats.ndcg = [precision], [precision]
            stats.responses = [Response(0.5 + repeat, 0, 0, 1, precision)]
            stats.run_seconds = 2.0 + repeat
            stats.recs_latency = [0.004]
            stats.repeats = repeat
            result.add(Outcome(name, stats, [True, repeat == 0]), catalogue, repeat)
    recsys = result.runs["recsys"]["figures"]
    assert recsys["precision@10"] == pytest.approx(0.15)  # the mean of the repeats
    assert recsys["repeats"] == 1 and recsys["users"] == 4  # counts summed
    assert result.ratios()["precision@10"] == pytest.approx(0.15 / 0.2)
    each = result.seed_ratios()
    assert [r["precision@10"] for r in each] == pytest.approx([2.0, 1 / 3])
    # Both repeats' responses in the curve, on the longest run's time axis.
    curve = result.runs["recsys"]["curve"]
    assert curve[1]["end"] == 3.0 and sum(float(b["responses"] or 0) for b in curve) == 2
    section = online.markdown(result, "bench/online.py --repeats 2", None)
    assert "2 repeats on the scenarios of seeds 7-8" in section
    assert "| 7 | 0.1000 | 0.2000 | 2.0000 | 2.0000 | 1.0000 |" in section
    assert "| 8 | 0.3000 | 0.1000 | 0.3333 | 0.3333 | 1.0000 |" in section


def test_evaluate_keeps_the_online_section(tmp_path: Path) -> None:
    doc = tmp_path / "quality.md"
    section = f"{SECTION_BEGIN}\nonline figures\n{SECTION_END}\n"
    doc.write_text("# old offline report\n\n" + section)
    argv = ["--dataset", "synthetic", "--synthetic-users", "60", "--synthetic-items", "40"]
    evaluate([*argv, "--model", "most-popular", "--quiet", "--write-doc", str(doc)])
    text = doc.read_text()
    assert "# old offline report" not in text and "most-popular" in text
    assert text.endswith(section)


# --- command line


def test_cold_options_default_to_the_full_configuration() -> None:
    args = parser().parse_args(["--protocol", "cold", "--users", "200", "--session-gap", "5"])
    protocol = online.protocol_of(args)
    assert protocol == Protocol(users=200, session_gap=5.0)
    assert protocol.concurrency == 50 and protocol.catalogue_size == 24_460
    history = parser().parse_args([])
    assert history.protocol == "history" and history.users is None  # filled in by main


# --- the baseline


def test_baseline_prefers_liked_items_and_never_repeats() -> None:
    state = State(items=[f"i{n}" for n in range(30)], known={f"i{n}" for n in range(30)})
    state.likes.update({"i7": 3, "i3": 1})
    first = recommend(state, "u", 5)
    assert first[:2] == ["i7", "i3"] and len(set(first)) == 5
    state.seen["u"].add("i20")  # rated
    rest = recommend(state, "u", 30)
    assert len(rest) == 24 and not set(rest) & (set(first) | {"i20"})
    assert recommend(state, "u", 5) == []  # everything seen


# --- one run of the protocol, in process


def test_protocol_against_the_baseline_learns_and_never_repeats() -> None:
    ratings = generate(
        SyntheticConfig(users=300, items=120, clusters=4, mean_ratings=25, zipf=1.2, seed=5)
    )
    protocol = Protocol(
        users=160,
        catalogue_size=600,
        concurrency=16,
        rounds=3,
        sessions=2,
        session_gap=0.05,
        pause=(0.0, 0.005),
        batch=100,
        buckets=4,
        seed=1,
        max_seconds=60,
    )
    scene = scenario(ratings, protocol)
    transport = httpx.ASGITransport(app=create_app())
    target = Target("baseline", "http://127.0.0.1:1", "http://127.0.0.1:2", transport=transport)
    outcome = asyncio.run(run_cold(scene, protocol, target, progress=False))
    stats = outcome.stats
    assert not stats.errors and not stats.timed_out
    assert stats.sessions_done == 320 and len(stats.lists) == 960
    assert stats.repeats == 0 and stats.rated_returned == 0 and stats.short_lists == 0
    assert stats.likes > 0 and stats.dislikes > 0

    # What ten random unseen items would score: each user's likes over the catalogue.
    chance = float(np.mean([sum(u.truth.values()) / protocol.catalogue_size for u in scene.users]))
    curve = learning_curve(stats.responses, protocol.k, protocol.buckets, stats.run_seconds)
    # The later half of the run, pooled: a time bucket may hold only a few lists when the
    # machine stalls (each bucket on its own failed now and then in busy full runs).
    late = [b for b in curve[2:] if b["precision"] is not None]
    lists = sum(float(b["responses"] or 0) for b in late)
    pooled = sum(float(b["precision"] or 0) * float(b["responses"] or 0) for b in late)
    assert lists >= 100 and pooled / lists > 2 * chance, (curve, chance)
    result = figures(outcome, scene.catalogue, protocol.k)
    assert result["precision@10"] > 1.5 * chance
    assert 0 < result["hit rate"] <= 1 and 0 < result["coverage"] <= 1
