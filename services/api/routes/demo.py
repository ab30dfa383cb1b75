"""GET / and /static/*: the demo page (plain HTML and JavaScript over the public API)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import FileResponse

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
