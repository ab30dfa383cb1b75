"""Request and response bodies of the api."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from services.common.events import ItemId

MAX_ITEMS_PER_BATCH = 10_000

Genre = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")
]


Title = Annotated[
    str, StringConstraints(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f\x7f]+$")
]


class AddItemsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    item_ids: list[ItemId] = Field(min_length=1, max_length=MAX_ITEMS_PER_BATCH)
    genres: list[Annotated[list[Genre], Field(max_length=32)]] | None = None
    # An extension of the original contract (optional, one per item): display titles.
    titles: list[Title] | None = None

    @model_validator(mode="after")
    def _one_genre_list_per_item(self) -> AddItemsRequest:
        if self.genres is not None and len(self.genres) != len(self.item_ids):
            raise ValueError(
                f"genres must have one list per item ({len(self.genres)} != {len(self.item_ids)})"
            )
        if self.titles is not None and len(self.titles) != len(self.item_ids):
            raise ValueError(
                f"titles must have one per item ({len(self.titles)} != {len(self.item_ids)})"
            )
        return self


class AddItemsResponse(BaseModel):
    status: str = "ok"
    added: int
    total: int


class ItemDetails(BaseModel):
    item_id: str
    title: str | None
    genres: list[str]


class ItemsResponse(BaseModel):
    """Only the requested ids that are in the catalogue, in request order."""

    items: list[ItemDetails]


class RecsResponse(BaseModel):
    item_ids: list[str]


class ExplainedRecsResponse(RecsResponse):
    sources: list[str]
    model_version: str | None
