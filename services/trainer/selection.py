"""Pick the model family to publish by validation NDCG on each user's most recent data."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Literal

from services.common.serving_model import ServingModel
from services.trainer.dataset import Interactions
from services.trainer.models import FAMILIES, ModelParams, fit_model
from services.trainer.splits import stratified_split, temporal_split
from services.trainer.validation import evaluate_model

log = logging.getLogger(__name__)

METRIC = "ndcg@10"
# Validation users are sampled so selection stays cheap on big datasets.
MAX_VALIDATION_USERS = 2000
# Share of each user's latest ratings held out for validation.
VALIDATION_FRACTION = 0.2


def select_model(
    data: Interactions,
    params: ModelParams | None = None,
    families: Sequence[str] = ("ease", "lightfm", "popularity"),
    *,
    validation: Literal["temporal", "random"] = "temporal",
) -> tuple[ServingModel, dict[str, Any]]:
    """Fit each family on older data, score it on recent data, refit the winner on everything.

    Returns the model to publish and a report: ``chosen``, per-family ``scores`` and
    ``reason``. With too little data to validate, the first family of ``families`` is
    fitted (popularity if there is nothing to learn from). The published model is not a
    candidate: it was trained on part of the newer ratings this validation slice holds, so
    it would be judged on what it saw; a refit on more data replaces it.

    ``validation="temporal"`` (production) holds out each user's latest ratings;
    ``"random"`` holds out a random slice per user, for offline runs whose test split is
    random too (validation should mirror how the model will be judged).
    """
    params = params or ModelParams()
    unknown = [f for f in families if f not in FAMILIES]
    if unknown or not families:
        raise ValueError(f"unknown model families {unknown}; choose from {sorted(FAMILIES)}")
    if validation == "random":
        train, valid = stratified_split(data, VALIDATION_FRACTION, seed=params.seed, min_train=2)
    else:
        train, valid = temporal_split(data, VALIDATION_FRACTION, min_train=2)
    has_validation = bool((valid.values > 0).any()) and bool((train.values > 0).any())
    scores: dict[str, float] = {}
    details: dict[str, dict[str, float]] = {}
    if has_validation:
        for family in families:
            started = time.perf_counter()
            candidate = fit_model(family, train, params)
            result = evaluate_model(candidate, train, valid, max_users=MAX_VALIDATION_USERS)
            result["fit_seconds"] = time.perf_counter() - started
            if candidate.family != family:  # fit_model fell back; do not credit the family
                continue
            details[family] = result
            scores[family] = result[METRIC]
            log.info(
                "validation %s=%.4f for %s (%.1fs)",
                METRIC,
                scores[family],
                family,
                result["fit_seconds"],
            )
    if scores:
        chosen = max(scores, key=lambda f: (scores[f], -list(families).index(f)))
        reason = f"best validation {METRIC}"
    else:
        chosen = families[0]
        reason = "too little data to validate"
    model = fit_model(chosen, data, params)
    metrics = dict(model.metrics)
    if chosen in details:
        metrics.update({k: round(v, 6) for k, v in details[chosen].items() if k != "fit_seconds"})
    for family, value in scores.items():
        metrics[f"{METRIC}.{family}"] = round(value, 6)
    model = replace(model, metrics=metrics)
    report: dict[str, Any] = {
        "chosen": model.family,
        "scores": scores,
        "details": details,
        "reason": reason,
        "validation": validation,
    }
    log.info("selected %s (%s); scores %s", model.family, reason, scores)
    return model, report
