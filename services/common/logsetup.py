"""Logging configured once per process: one format for every recsys process and for the
libraries inside it (uvicorn included), each line naming its component."""

from __future__ import annotations

import logging
from typing import Literal

from pythonjsonlogger.json import JsonFormatter

TEXT_FORMAT = "%(asctime)s %(levelname)s [%(component)s] %(name)s: %(message)s"
# Field names as log collectors (Loki, Elasticsearch) expect them; "component" is ours.
JSON_FIELDS = "%(asctime)s %(levelname)s %(component)s %(name)s %(message)s"
JSON_RENAMES = {"asctime": "time", "levelname": "level", "name": "logger"}


class ComponentFilter(logging.Filter):
    """Stamps every record with the process's component (api, collector, trainer, up)."""

    def __init__(self, component: str) -> None:
        super().__init__()
        self.component = component

    def filter(self, record: logging.LogRecord) -> bool:
        record.component = self.component
        # uvicorn's copy of the message with terminal colours: noise in a JSON line.
        record.__dict__.pop("color_message", None)
        return True


def configure_logging(
    level: str, component: str = "recsys", fmt: Literal["text", "json"] = "text"
) -> None:
    """One handler on the root logger; uvicorn's loggers propagate to it (the servers are
    started with ``log_config=None``), so their lines look like ours."""
    handler = logging.StreamHandler()
    handler.addFilter(ComponentFilter(component))
    if fmt == "json":
        handler.setFormatter(JsonFormatter(JSON_FIELDS, rename_fields=JSON_RENAMES))
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    # pika and aiormq are chatty at INFO about every connection step, httpx about every
    # request (the launcher's health checks).
    for noisy in ("pika", "aiormq", "aio_pika", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
