"""Model families behind one entry point: ``fit_model(family, data, params)``."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace

from services.common.serving_model import ServingModel
from services.trainer.dataset import Interactions
from services.trainer.models import ease, lightfm_model, popularity
from services.trainer.models.base import ModelParams, Neighbours

log = logging.getLogger(__name__)

Fitter = Callable[[Interactions, ModelParams, Neighbours | None], ServingModel]

FAMILIES: dict[str, Fitter] = {
    "popularity": popularity.fit,
    "lightfm": lightfm_model.fit,
    "ease": ease.fit,
}

# Families whose item neighbours only add to their own scores (the freshness path), so the
# trainer may pass in the neighbours of an earlier fit; EASE's neighbours are the model.
REUSABLE_NEIGHBOURS = frozenset({"lightfm", "popularity"})


def fit_model(
    family: str,
    data: Interactions,
    params: ModelParams | None = None,
    *,
    neighbours: Neighbours | None = None,
) -> ServingModel:
    """Fit one family; an empty dataset falls back to popularity (nothing to learn from).

    ``neighbours`` (families in ``REUSABLE_NEIGHBOURS`` only, ignored by the others): item
    neighbours computed earlier, one row per item of ``data``, used instead of computing
    them again. The returned model has ``version=""``: the trainer stamps it with
    ``dataclasses.replace``.
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; choose one of {sorted(FAMILIES)}")
    params = params or ModelParams()
    if family != "popularity" and (len(data) == 0 or not (data.values > 0).any()):
        log.info("no likes to learn from: fitting popularity instead of %s", family)
        family = "popularity"
        neighbours = None  # computed for another family
    started = time.perf_counter()
    if family not in REUSABLE_NEIGHBOURS:
        neighbours = None
    elif neighbours is not None and neighbours[0].shape[0] != len(data.item_ids):
        raise ValueError("neighbours must have one row per item of the data")
    model = FAMILIES[family](data, params, neighbours)
    seconds = time.perf_counter() - started
    return replace(model, metrics={**model.metrics, "fit_seconds": round(seconds, 4)})


__all__ = ["FAMILIES", "REUSABLE_NEIGHBOURS", "ModelParams", "Neighbours", "fit_model"]
