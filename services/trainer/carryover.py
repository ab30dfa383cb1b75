"""What a training cycle leaves for the next one, even in another process.

A Kubernetes trainer Job is a fresh process every interval; these let it start where the
last one stopped instead of re-reading the log and re-selecting the model family:
- a snapshot of the parsed log next to the log (``LogSnapshot``), so only later lines are
  read;
- a record in Redis (``Keys.model_selection``) of the model selection and of which
  published model holds still-fresh item neighbours (``SelectionRecord``).
Both are caches: anything wrong with them means doing the work again, never wrong data.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from redis.exceptions import RedisError

from services.trainer.dataset import InteractionStore
from services.trainer.feedback_state import FeedbackState
from services.trainer.interaction_log import InteractionLog, LogCursor
from services.trainer.models import Neighbours

log = logging.getLogger(__name__)


@dataclass
class Selection:
    """The last validated choice of family, kept so later cycles fit only that family."""

    family: str
    metrics: dict[str, float]
    interactions: int
    cycles: int = 0


@dataclass(frozen=True)
class PublishedNeighbours:
    """Item neighbours an earlier trainer published (in the blob of ``version``)."""

    family: str
    likes: int
    version: str


def fingerprint(first_line: bytes) -> str:
    """Tells one log from another (a /cleanup truncates and the log starts anew)."""
    return hashlib.sha256(first_line).hexdigest()


class LogSnapshot:
    """The parsed interactions up to a byte of the log, in a file next to it."""

    def __init__(self, interaction_log: InteractionLog) -> None:
        self.path = interaction_log.snapshot_path

    def load(self, first_line: bytes) -> tuple[InteractionStore, LogCursor] | None:
        """The parsed copy of this log, if one was left; one of another log is deleted.

        A snapshot this log no longer continues (truncated past its offset) is caught by
        ``InteractionLog.read_new`` as a rewrite.
        """
        if not self.path.exists():
            return None
        started = time.perf_counter()
        try:
            store, extra = InteractionStore.load(self.path)
            cursor = LogCursor(int(extra["offset"]), extra["last_line"].tobytes())
            same_log = extra["first_line"].tobytes() == first_line and first_line != b""
        except Exception as error:  # a cache: anything wrong with it means reading the log
            log.warning("ignoring the log snapshot %s: %r", self.path, error)
            same_log = False
        if not same_log:
            self.path.unlink(missing_ok=True)
            return None
        log.info(
            "log snapshot: %d events up to byte %d loaded in %.2fs",
            store.events,
            cursor.offset,
            time.perf_counter() - started,
        )
        return store, cursor

    def save(self, store: InteractionStore, cursor: LogCursor, first_line: bytes) -> None:
        try:
            store.save(
                self.path,
                offset=np.array(cursor.offset, dtype=np.int64),
                last_line=np.frombuffer(cursor.last_line, dtype=np.uint8),
                first_line=np.frombuffer(first_line, dtype=np.uint8),
            )
        except OSError as error:
            log.warning("could not write the log snapshot: %r", error)


# Store the trainer's record only if no /cleanup happened since the cycle started (the
# same check as the publish): a record of wiped data is never left behind.
_RECORD = """
if (redis.call('GET', KEYS[1]) or '0') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
return 1
"""


class SelectionRecord:
    """The selection and the published neighbours, recorded in Redis after each publish.

    Trusted only for the same epoch, the same log (its first line) and the same
    ``config`` (families and parameters).
    """

    def __init__(self, state: FeedbackState) -> None:
        self.state = state
        self._record = state.redis.register_script(_RECORD)

    def load(
        self, epoch: str, first_line: bytes, config: dict[str, Any], families: tuple[str, ...]
    ) -> tuple[Selection | None, PublishedNeighbours | None]:
        raw = self.state.redis.get(self.state.keys.model_selection)
        if raw is None:
            return None, None
        try:
            record = json.loads(raw)
            if (
                record["epoch"] != epoch
                or record["log"] != fingerprint(first_line)
                or record["config"] != config
            ):
                log.info("the recorded model selection is of other data or settings: not used")
                return None, None
            chosen, neighbours = record["selection"], record["neighbours"]
            selection = (
                Selection(
                    str(chosen["family"]),
                    {k: float(v) for k, v in chosen["metrics"].items()},
                    int(chosen["interactions"]),
                    int(chosen["cycles"]),
                )
                if chosen is not None and chosen["family"] in families
                else None
            )
            published = (
                PublishedNeighbours(
                    str(neighbours["family"]), int(neighbours["likes"]), str(neighbours["version"])
                )
                if neighbours is not None
                else None
            )
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            log.warning("ignoring an unreadable model selection record: %r", error)
            return None, None
        log.info("restored the recorded model selection: %s", record["selection"])
        return selection, published

    def save(
        self,
        epoch: str,
        first_line: bytes,
        config: dict[str, Any],
        selection: Selection | None,
        neighbours: PublishedNeighbours | None,
    ) -> None:
        record = {
            "epoch": epoch,
            "log": fingerprint(first_line),
            "config": config,
            "selection": asdict(selection) if selection is not None else None,
            "neighbours": asdict(neighbours) if neighbours is not None else None,
        }
        keys = [self.state.keys.epoch, self.state.keys.model_selection]
        try:
            self._record(keys=keys, args=[epoch, json.dumps(record)])
        except RedisError:  # the model is out; the next fresh trainer just selects again
            log.warning("could not record the model selection", exc_info=True)

    def neighbours(self, published: PublishedNeighbours, item_ids: list[str]) -> Neighbours | None:
        """The neighbours in the published blob, if its items start ``item_ids``."""
        blob = self.state.redis.get(self.state.keys.model_blob(published.version))
        if not isinstance(blob, bytes):
            return None  # pruned or wiped
        with np.load(io.BytesIO(blob), allow_pickle=False) as arrays:
            known = json.loads(arrays["meta"].tobytes())["item_ids"]
            idx, weight = arrays["neighbor_idx"], arrays["neighbor_weight"]
        # Same log, same order of first appearance: the old items are a prefix of these.
        n = len(known)
        if idx.shape[0] != n or weight.shape != idx.shape or item_ids[:n] != known:
            log.warning("the published model's items do not match the log: neighbours not reused")
            return None
        return idx, weight
