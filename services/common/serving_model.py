"""The trained model as the api serves it: plain arrays, one blob in the store."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float32]
IntArray = NDArray[np.int32]


@dataclass(frozen=True)
class ServingModel:
    """Everything /recs needs to score items, independent of the model family.

    ``neighbor_idx``/``neighbor_weight`` hold, per item, its top-M related items; they
    let the api fold a fresh like into the list at once. ``user_factors`` and
    ``item_factors`` are present for factor models (LightFM) only.
    """

    version: str
    family: str
    trained_at: float
    item_ids: list[str]
    popularity: FloatArray
    neighbor_idx: IntArray
    neighbor_weight: FloatArray
    user_ids: list[str] = field(default_factory=list)
    user_factors: FloatArray | None = None
    item_factors: FloatArray | None = None
    item_bias: FloatArray | None = None
    metrics: dict[str, float] = field(default_factory=dict)

    def info(self) -> dict[str, object]:
        """Public summary (GET /model, the trainer's termination message)."""
        return {
            "version": self.version,
            "model": self.family,
            "trained_at": self.trained_at,
            "items": len(self.item_ids),
            "users": len(self.user_ids),
            "metrics": self.metrics,
        }

    def to_bytes(self) -> bytes:
        meta = {
            "version": self.version,
            "family": self.family,
            "trained_at": self.trained_at,
            "item_ids": self.item_ids,
            "user_ids": self.user_ids,
            "metrics": self.metrics,
        }
        arrays: dict[str, NDArray[np.generic]] = {
            "popularity": self.popularity,
            "neighbor_idx": self.neighbor_idx,
            "neighbor_weight": self.neighbor_weight,
        }
        for name in ("user_factors", "item_factors", "item_bias"):
            value = getattr(self, name)
            if value is not None:
                arrays[name] = value
        buffer = io.BytesIO()
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        np.savez(buffer, **arrays)  # type: ignore[arg-type]
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> ServingModel:
        with np.load(io.BytesIO(blob), allow_pickle=False) as data:
            meta = json.loads(data["meta"].tobytes().decode())
            optional = {
                name: data[name] if name in data.files else None
                for name in ("user_factors", "item_factors", "item_bias")
            }
            return cls(
                version=meta["version"],
                family=meta["family"],
                trained_at=float(meta["trained_at"]),
                item_ids=list(meta["item_ids"]),
                user_ids=list(meta["user_ids"]),
                metrics={k: float(v) for k, v in meta["metrics"].items()},
                popularity=data["popularity"],
                neighbor_idx=data["neighbor_idx"],
                neighbor_weight=data["neighbor_weight"],
                **optional,
            )
