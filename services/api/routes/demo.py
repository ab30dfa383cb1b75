"""GET / and /static/*: the demo page (plain HTML and JavaScript over the public API),
and /demo/*: what the page needs to know (the collector's address, the sample)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import FileResponse

from services.api.deps import SettingsDep
from services.api.sample_catalogue import Sample, sample

router = APIRouter(tags=["demo"], include_in_schema=False)

STATIC = Path(__file__).resolve().parent.parent / "static"
# Only the files shipped with the package are served: no path from the request reaches
# the filesystem.
ASSETS = {path.name: path for path in STATIC.iterdir() if path.is_file()}
MEDIA_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}


def _file(name: str) -> FileResponse:
    path = ASSETS.get(name)
    if path is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no such file: {name}")
    return FileResponse(
        path,
        media_type=MEDIA_TYPES.get(path.suffix, "application/json"),
        headers={"Cache-Control": "no-cache"},
    )


@router.get("/")
async def index() -> FileResponse:
    return _file("index.html")


@router.get("/static/{name}")
async def asset(name: str) -> FileResponse:
    return _file(name)


@router.get("/demo/config.json")
async def config(settings: SettingsDep) -> dict[str, object]:
    """Where the page posts feedback: RECSYS_DEMO_COLLECTOR_ADDRESS, or (null) the page's own
    host on ``collector_port``; the api knows the port, the page cannot guess it."""
    return {
        "collector_url": settings.demo_collector_address,
        "collector_port": settings.collector_port,
    }


@router.get("/demo/sample-catalogue.json")
async def sample_catalogue() -> Sample:
    return sample()
