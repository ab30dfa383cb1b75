"""The InteractEvent: what /interact accepts, the broker carries and the log stores."""

from __future__ import annotations

import math
import time
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from services.core.feedback import ACTION_PATTERN

MAX_ID_LENGTH = 256
MAX_ITEMS_PER_EVENT = 1000
# Unix seconds; about the year 5138, far beyond any real event.
MAX_TIMESTAMP = 10**11
# How far ahead of the server's clock an event's time may be (clients' clocks drift). A
# rating is latest-wins by time, so an event from the far future would pin it for good.
MAX_CLOCK_SKEW = 300.0

# Ids are opaque strings; control characters are refused so ids stay printable in logs and keys.
ItemId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_ID_LENGTH, pattern=r"^[^\x00-\x1f\x7f]+$"),
]


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank or only whitespace")
    return value


# A user id must name someone: "" and "   " would pool unrelated anonymous callers.
UserId = Annotated[ItemId, AfterValidator(_not_blank)]
# Which names are accepted is configuration (RECSYS_FEEDBACK_TYPES, checked by the collector);
# the event itself only keeps names well formed, so an event accepted under an earlier
# configuration is never dropped later.
Action = Annotated[str, StringConstraints(pattern=ACTION_PATTERN)]


def has_control_characters(text: str) -> bool:
    """What ItemId's pattern refuses, for ids that come in a URL path instead of a body."""
    return any(ord(c) < 32 or ord(c) == 127 for c in text)


def refused_id(user_id: str) -> str | None:
    """Why a user id from a URL path is refused (what UserId refuses in a body), or None."""
    if has_control_characters(user_id):
        return "user_id must not contain control characters"
    if not user_id.strip():
        return "user_id must not be blank or only whitespace"
    return None


class InteractEvent(BaseModel):
    """One user's feedback on one or more items (``actions`` parallel to ``item_ids``)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    user_id: UserId
    item_ids: list[ItemId] = Field(min_length=1, max_length=MAX_ITEMS_PER_EVENT)
    actions: list[Action] = Field(min_length=1, max_length=MAX_ITEMS_PER_EVENT)
    timestamp: float | None = Field(
        default=None,
        ge=0,
        le=MAX_TIMESTAMP,
        description=f"Unix seconds (server time if absent); at most {MAX_CLOCK_SKEW:.0f} s "
        "ahead of the server's clock",
    )

    @model_validator(mode="before")
    @classmethod
    def _accept_integer_timestamp(cls, data: object) -> object:
        # Strict mode refuses ints for floats; clients send Unix seconds as either.
        if isinstance(data, dict):
            ts = data.get("timestamp")
            # Beyond the bound an int stays an int and fails validation (a 422): float() of
            # a huge one raises OverflowError, which would be a 500.
            if isinstance(ts, int) and not isinstance(ts, bool) and abs(ts) <= MAX_TIMESTAMP:
                data = {**data, "timestamp": float(ts)}
        return data

    @model_validator(mode="after")
    def _parallel_lists(self) -> InteractEvent:
        if len(self.item_ids) != len(self.actions):
            raise ValueError(
                f"item_ids and actions must have the same length "
                f"({len(self.item_ids)} != {len(self.actions)})"
            )
        if self.timestamp is not None:
            if not math.isfinite(self.timestamp):
                raise ValueError("timestamp must be a finite number")
            if self.timestamp > time.time() + MAX_CLOCK_SKEW:
                raise ValueError(
                    f"timestamp is in the future (more than {MAX_CLOCK_SKEW:.0f} s ahead of "
                    "the server's clock)"
                )
        return self


class StoredEvent(BaseModel):
    """An accepted event with its broker message id, as written to the durable log."""

    model_config = ConfigDict(extra="ignore")

    event_id: str
    user_id: str
    item_ids: list[str]
    actions: list[Action]
    timestamp: float
