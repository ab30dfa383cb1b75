"""The line `recsys up` ends its start-up with: where the api, the collector and the demo
page answer, logged once both services pass their health check."""

from __future__ import annotations

import logging
import threading
import time

import httpx

from services.common.settings import Settings

log = logging.getLogger(__name__)


def addresses(settings: Settings) -> dict[str, str]:
    # 0.0.0.0 is where the servers listen, not an address a browser can open.
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    api = f"http://{host}:{settings.api_port}"
    return {
        "api": api,
        "collector": f"http://{host}:{settings.collector_port}",
        "demo": f"{api}/",
        "docs": f"{api}/docs",
    }


def ready_line(settings: Settings) -> str:
    a = addresses(settings)
    return (
        f"recsys is up: api {a['api']} (API docs {a['docs']}), collector {a['collector']}, "
        f"demo page {a['demo']} - Ctrl-C stops it"
    )


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthcheck", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def announce_when_ready(settings: Settings, timeout: float = 300.0) -> threading.Thread:
    """Log :func:`ready_line` once api and collector answer (in a daemon thread)."""
    urls = addresses(settings)

    def wait() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _healthy(urls["api"]) and _healthy(urls["collector"]):
                log.info(ready_line(settings))
                return
            time.sleep(0.5)
        log.warning("api or collector not healthy after %.0f s; see the lines above", timeout)

    thread = threading.Thread(target=wait, name="announce", daemon=True)
    thread.start()
    return thread
