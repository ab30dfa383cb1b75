"""Request dependencies of the collector."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.common.broker import Publisher


def get_publisher(request: Request) -> Publisher:
    publisher: Publisher = request.app.state.publisher
    return publisher


PublisherDep = Annotated[Publisher, Depends(get_publisher)]
