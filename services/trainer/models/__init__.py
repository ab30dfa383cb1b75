"""Model families behind one entry point: ``fit_model(family, data, params)``."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace

from services.common.serving_model import ServingModel
from services.trainer.dataset import Interactions
from services.trainer.models import ease, lightfm_model, popularity
from services.trainer.models.base import ModelParams

log = logging.getLogger(__name__)

Fitter = Callable[[Interactions, ModelParams], ServingModel]

FAMILIES: dict[str, Fitter] = {
    "popularity": popularity.fit,
    "lightfm": lightfm_model.fit,
    "ease": ease.fit,
}


def fit_model(family: str, data: Interactions, params: ModelParams | None = None) -> ServingModel:
    """Fit one family; an empty dataset falls back to popularity (nothing to learn from).

    The returned model has ``version=""``: the trainer stamps it with ``dataclasses.replace``.
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; choose one of {sorted(FAMILIES)}")
    params = params or ModelParams()
    if family != "popularity" and (len(data) == 0 or not (data.values > 0).any()):
        log.info("no likes to learn from: fitting popularity instead of %s", family)
        family = "popularity"
    started = time.perf_counter()
    model = FAMILIES[family](data, params)
    seconds = time.perf_counter() - started
    return replace(model, metrics={**model.metrics, "fit_seconds": round(seconds, 4)})


__all__ = ["FAMILIES", "ModelParams", "fit_model"]
