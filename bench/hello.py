"""The floor: one FastAPI JSON endpoint, served by uvicorn exactly as `recsys api` serves.

Same factory style, same uvicorn settings (1 worker, default loop and http implementation,
which pick uvloop and httptools when installed, access log off), so the ratio of a recsys
endpoint to this one is what the product's own work costs.
"""

from __future__ import annotations

import sys

import uvicorn
from fastapi import FastAPI


def create_app() -> FastAPI:
    app = FastAPI(title="hello")

    @app.api_route("/hello", methods=["GET", "POST"])
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    return app


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    # Mirrors services.cli._serve.
    uvicorn.run(
        "bench.hello:create_app",
        factory=True,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
