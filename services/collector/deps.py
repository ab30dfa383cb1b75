"""Request dependencies of the collector.

``async def``: FastAPI runs a plain ``def`` dependency in the thread pool, a thread hop per
request (measured on /interact: bench/fixes/async-deps-collector.json).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.common.broker import Publisher


async def get_publisher(request: Request) -> Publisher:
    publisher: Publisher = request.app.state.publisher
    return publisher


PublisherDep = Annotated[Publisher, Depends(get_publisher)]
