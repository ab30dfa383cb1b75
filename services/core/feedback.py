"""Feedback types as data: what each action a client sends means to recsys.

Every action has a role, and a weight for training:
- ``positive`` (like, purchase): the user wants more like it. Never shown to them again, a
  full reward for the item's bandit, co-liked with their other positives, a positive
  training value.
- ``negative`` (dislike): never shown to them again, pushes its neighbours down for them,
  a negative training value; for everyone else it still says the item was watched.
- ``watched`` (view, play): never shown to them again, a watched reward for the bandit, a
  (small) positive training value.
- ``excluded`` (hide, not interested): never shown to them again, nothing else.

A new action type is a setting (``RECSYS_FEEDBACK_TYPES``), not code.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Role(StrEnum):
    POSITIVE = "positive"
    NEGATIVE = "negative"
    WATCHED = "watched"
    EXCLUDED = "excluded"


class FeedbackType(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    role: Role
    # The training value's magnitude (its sign comes from the role).
    weight: float = Field(1.0, gt=0, le=100)


DEFAULT_TYPES: dict[str, FeedbackType] = {
    "like": FeedbackType(role=Role.POSITIVE),
    "dislike": FeedbackType(role=Role.NEGATIVE),
}

# Names clients may use for actions: short, lower case, safe in a Redis value and a label.
ACTION_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"


def training_value(feedback: FeedbackType) -> float:
    """The value a model trains on; 0 for actions that only exclude."""
    sign = {
        Role.POSITIVE: 1.0,
        Role.WATCHED: 1.0,
        Role.NEGATIVE: -1.0,
        Role.EXCLUDED: 0.0,
    }[feedback.role]
    return sign * feedback.weight


def roles_argument(types: dict[str, FeedbackType]) -> str:
    """The action-to-role map as the ingest script reads it: "like=positive,dislike=..."."""
    return ",".join(f"{action}={feedback.role.value}" for action, feedback in types.items())


def training_values(types: dict[str, FeedbackType]) -> dict[str, float]:
    """Action name -> training value; actions that only exclude are left out."""
    values = {action: training_value(feedback) for action, feedback in types.items()}
    return {action: value for action, value in values.items() if value != 0.0}
