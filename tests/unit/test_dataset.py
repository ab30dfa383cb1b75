"""From events to a training matrix: latest action per (user, item) wins."""

from __future__ import annotations

from services.trainer.dataset import from_events
from tests.factories import event


def test_latest_action_wins_and_dislikes_are_negative() -> None:
    data = from_events(
        [
            event("u", ["a", "b"], ["like", "like"], ts=1),
            event("u", ["a"], ["dislike"], ts=3),
            event("u", ["b"], ["dislike"], ts=0),  # older: ignored
            event("v", ["a"], ["like"], ts=2),
        ]
    )
    rows = {
        (data.user_ids[u], data.item_ids[i]): v
        for u, i, v in zip(data.users, data.items, data.values, strict=True)
    }
    assert rows == {("u", "a"): -1.0, ("u", "b"): 1.0, ("v", "a"): 1.0}
    positives = data.matrix()
    assert positives.sum() == 2


def test_seeded_item_index_keeps_unrated_items() -> None:
    data = from_events([event("u", ["b"], ["like"])], item_ids=["a", "b", "c"])
    assert data.item_ids == ["a", "b", "c"]
    assert data.shape == (1, 3)
