"""Incremental training input: the log read from a cursor, interactions merged as they come."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from scipy import sparse

from services.common.events import StoredEvent
from services.trainer.dataset import Interactions, InteractionStore, from_events
from services.trainer.interaction_log import InteractionLog, LogCursor, LogRewrittenError
from services.trainer.models import ModelParams, fit_model
from services.trainer.models.base import cooccurrence_neighbours, top_m_dense, top_m_sparse
from services.trainer.models.ease import ease_weights
from tests.factories import event


def rows(data: Interactions) -> list[tuple[str, str, float, float]]:
    return sorted(
        zip(
            [data.user_ids[u] for u in data.users],
            [data.item_ids[i] for i in data.items],
            data.values.tolist(),
            data.timestamps.tolist(),
            strict=True,
        )
    )


def random_events(n: int, seed: int) -> list[StoredEvent]:
    rng = random.Random(seed)
    events = []
    for _ in range(n):
        k = rng.randint(1, 3)
        items = rng.sample([f"i{j}" for j in range(15)], k)
        actions = [rng.choice(["like", "like", "dislike"]) for _ in items]
        # Coarse timestamps: many ties, which the later event must win.
        events.append(event(f"u{rng.randint(0, 9)}", items, actions, ts=float(rng.randint(0, 20))))
    return events


def test_read_new_returns_only_appended_lines(tmp_path: Path) -> None:
    log = InteractionLog(tmp_path / "log")
    first = [event("u", ["a"], ["like"]), event("v", ["b"], ["like"])]
    log.append(first)
    cursor = LogCursor()
    assert list(log.read_new(cursor)) == first
    assert cursor.offset == (tmp_path / "log").stat().st_size
    assert list(log.read_new(cursor)) == []
    second = [event("w", ["c"], ["dislike"])]
    log.append(second)
    with open(tmp_path / "log", "ab") as file:
        file.write(b'{"event_id": "half-writ')  # the ingester is mid-write
    assert list(log.read_new(cursor)) == second
    with open(tmp_path / "log", "ab") as file:
        file.write(b'ten"}\n')  # finished, but unreadable: skipped, cursor moves past it
    log.append(second[:1])
    assert list(log.read_new(cursor)) == second


def test_read_new_notices_a_truncated_log(tmp_path: Path) -> None:
    log = InteractionLog(tmp_path / "log")
    log.append([event("u", ["a"], ["like"]), event("v", ["b"], ["like"])])
    cursor = LogCursor()
    list(log.read_new(cursor))
    log.truncate()  # /cleanup
    with pytest.raises(LogRewrittenError):
        list(log.read_new(cursor))
    # Truncated, then written past the old offset: the bytes before it are not the same line.
    log.append([event(f"x{i}", ["a", "b", "c"], ["like"] * 3) for i in range(5)])
    assert (tmp_path / "log").stat().st_size > cursor.offset
    with pytest.raises(LogRewrittenError):
        list(log.read_new(cursor))
    fresh = LogCursor()
    assert [e.user_id for e in log.read_new(fresh)] == [f"x{i}" for i in range(5)]


@pytest.mark.parametrize("batches", [1, 3, 40])
def test_store_matches_from_events_in_any_batching(batches: int) -> None:
    events = random_events(200, seed=batches)
    store = InteractionStore()
    for chunk in np.array_split(np.arange(len(events)), batches):
        store.add(events[i] for i in chunk)
    data = store.interactions()
    expected = from_events(events)
    assert rows(data) == rows(expected)
    assert data.user_ids == expected.user_ids and data.item_ids == expected.item_ids
    assert store.events == len(events) and len(store) == len(expected)
    assert store.likes() == int((expected.values > 0).sum())


def test_store_snapshot_is_unaffected_by_later_events() -> None:
    store = InteractionStore()
    store.add([event("u", ["a"], ["like"], ts=1.0)])
    before = store.interactions()
    store.add([event("u", ["a"], ["dislike"], ts=2.0), event("v", ["b"], ["like"], ts=2.0)])
    assert rows(before) == [("u", "a", 1.0, 1.0)]
    assert before.user_ids == ["u"] and before.item_ids == ["a"]
    # An older event arriving late does not override a newer one.
    store.add([event("u", ["a"], ["like"], ts=0.5)])
    assert rows(store.interactions())[0] == ("u", "a", -1.0, 2.0)


def test_sparse_top_m_matches_dense() -> None:
    rng = np.random.default_rng(3)
    dense = np.where(rng.random((30, 25)) < 0.3, rng.integers(1, 6, (30, 25)), 0).astype(np.float32)
    idx, weight = top_m_sparse(sparse.csr_matrix(dense), 4)
    _, expected_weight = top_m_dense(dense, 4)
    # Same weights; the items may differ only among equal weights.
    assert np.array_equal(weight, expected_weight)
    valid = idx >= 0
    assert (valid == (expected_weight > 0)).all()
    assert np.array_equal(np.take_along_axis(dense, np.maximum(idx, 0), 1)[valid], weight[valid])


def test_cooccurrence_for_some_rows_only() -> None:
    rng = np.random.default_rng(5)
    likes = sparse.csr_matrix((rng.random((60, 12)) < 0.3).astype(np.float32))
    all_idx, all_w = cooccurrence_neighbours(likes, 5)
    some = np.array([1, 4, 7])
    idx, w = cooccurrence_neighbours(likes, 5, rows=some)
    assert np.array_equal(w[some], all_w[some])
    others = np.setdiff1d(np.arange(12), some)
    assert (idx[others] == -1).all() and (w[others] == 0).all()
    assert not (all_idx == np.arange(12)[:, None]).any()  # never its own neighbour


def test_ease_weights_in_float32_match_float64() -> None:
    rng = np.random.default_rng(0)
    x = (rng.random((200, 50)) < 0.2).astype(np.float64)
    b64 = ease_weights(x.T @ x, 10.0)
    b32 = ease_weights((x.T @ x).astype(np.float32), 10.0)
    assert b32.dtype == np.float32
    assert np.abs(b32 - b64).max() <= 1e-5 * np.abs(b64).max()


def test_fit_model_uses_given_neighbours_for_reusable_families() -> None:
    data = from_events(random_events(100, seed=1))
    params = ModelParams(components=4, epochs=2, neighbours=3)
    n = len(data.item_ids)
    given = (np.full((n, 3), 2, dtype=np.int32), np.ones((n, 3), dtype=np.float32))
    for family in ("lightfm", "popularity"):
        model = fit_model(family, data, params, neighbours=given)
        assert model.neighbor_idx is given[0] and model.neighbor_weight is given[1]
    ease = fit_model("ease", data, params, neighbours=given)
    assert ease.neighbor_idx is not given[0]
    with pytest.raises(ValueError, match="one row per item"):
        fit_model("lightfm", data, params, neighbours=(given[0][:2], given[1][:2]))


def test_store_saved_and_loaded_is_the_same_store(tmp_path: Path) -> None:
    events = random_events(300, seed=7)
    store = InteractionStore()
    store.add(events[:200])
    path = tmp_path / "snapshot.npz"
    store.save(path, offset=np.array(123, dtype=np.int64))
    assert [p.name for p in tmp_path.iterdir()] == ["snapshot.npz"]  # no temporary left
    loaded, extra = InteractionStore.load(path)
    assert int(extra["offset"]) == 123 and loaded.events == 200
    # Later events merge into the loaded store as into the original: same indices.
    store.add(events[200:])
    loaded.add(events[200:])
    a, b = store.interactions(), loaded.interactions()
    assert a.user_ids == b.user_ids and a.item_ids == b.item_ids
    assert rows(a) == rows(b) == rows(from_events(events))


def test_first_line_tells_a_rewritten_log_apart(tmp_path: Path) -> None:
    log = InteractionLog(tmp_path / "log")
    assert log.first_line() == b""
    log.append([event("u", ["a"], ["like"]), event("v", ["b"], ["like"])])
    first = log.first_line()
    assert first.endswith(b"\n") and b'"u"' in first
    log.snapshot_path.write_bytes(b"x")
    log.truncate()
    assert not log.snapshot_path.exists()
    log.append([event("u", ["a"], ["like"])])
    assert log.first_line() != first  # a new event id
