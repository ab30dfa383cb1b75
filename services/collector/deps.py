"""Request dependencies of the collector."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.common.broker import ConfirmedPublisher


def get_publisher(request: Request) -> ConfirmedPublisher:
    publisher: ConfirmedPublisher = request.app.state.publisher
    return publisher


PublisherDep = Annotated[ConfirmedPublisher, Depends(get_publisher)]
