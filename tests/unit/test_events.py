"""The InteractEvent schema."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.common.events import InteractEvent


def test_valid_event() -> None:
    event = InteractEvent.model_validate(
        {"user_id": "u", "item_ids": ["a"], "actions": ["like"], "timestamp": 5}
    )
    assert event.timestamp == 5.0


@pytest.mark.parametrize("ts", [float("inf"), float("nan"), -1.0, 1e12])
def test_bad_timestamps(ts: float) -> None:
    with pytest.raises(ValidationError):
        InteractEvent.model_validate(
            {"user_id": "u", "item_ids": ["a"], "actions": ["like"], "timestamp": ts}
        )


def test_unicode_ids_are_fine() -> None:
    event = InteractEvent.model_validate(
        {"user_id": "ユーザー🙂", "item_ids": ["película"], "actions": ["dislike"]}
    )
    assert event.user_id == "ユーザー🙂"
