"""Explicit ratings with genres, and how they become likes and dislikes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from services.trainer.dataset import DISLIKE, LIKE, Interactions

# "all": every rating is an interaction (the Microsoft Recommenders benchmark protocol).
# "threshold": ratings >= like_threshold are likes, the rest dislikes (how the product sees them).
Feedback = Literal["all", "threshold"]


@dataclass(frozen=True)
class Ratings:
    """One row per (user, item) rating; ``genres`` maps item id to its genre names."""

    name: str
    user_ids: list[str]
    item_ids: list[str]
    users: NDArray[np.int32]
    items: NDArray[np.int32]
    ratings: NDArray[np.float32]
    timestamps: NDArray[np.float64]
    genres: dict[str, list[str]] = field(default_factory=dict)
    like_threshold: float = 4.0

    def __len__(self) -> int:
        return int(self.users.shape[0])

    def likes(self) -> NDArray[np.bool_]:
        """Rows the user would like (rating at or above the threshold)."""
        return self.ratings >= self.like_threshold

    def interactions(self, feedback: Feedback = "all") -> Interactions:
        """The ratings as the trainer sees them; rows are assumed unique per (user, item)."""
        if feedback == "all":
            values = np.full(len(self), LIKE, dtype=np.float32)
        else:
            values = np.where(self.likes(), LIKE, DISLIKE).astype(np.float32)
        return Interactions(
            list(self.user_ids),
            list(self.item_ids),
            self.users.astype(np.int32),
            self.items.astype(np.int32),
            values,
            self.timestamps.astype(np.float64),
        )
