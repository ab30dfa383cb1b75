"""The trainer's writes to Redis: users' ratings (at once) and published models."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from redis import Redis

from services.common.events import StoredEvent
from services.common.keys import Keys, encoded
from services.common.lua import CLEAR_IF_EQUAL
from services.common.serving_model import ServingModel
from services.core.feedback import DEFAULT_TYPES, FeedbackType, roles_argument
from services.core.ratings import (
    APPLY_RATINGS,
    COLIKE_PAIRS_PER_CALL,
    COLIKES_KEPT,
    RECENT_LIKES_KEPT,
)

# Users whose events one script call applies: 50 users' events of one item each hold Redis
# about 2 ms (its CPU per event under ingestion: ~0.035 ms), and other clients (the api's
# /recs) get in between two calls of a batch.
USERS_PER_CALL = 50

# A blob expires until the pointer switch makes it permanent: a trainer killed between the
# upload and the switch leaves no orphan behind for long.
ORPHAN_BLOB_TTL = 3600

# Switch the served model only if no /cleanup happened since training started, and only to
# a blob that is really there (an expired or wiped upload is never announced).
_PUBLISH = """
if (redis.call('GET', KEYS[1]) or '0') ~= ARGV[1] then
  redis.call('DEL', KEYS[2])
  return 0
end
if redis.call('PERSIST', KEYS[2]) == 0 and redis.call('EXISTS', KEYS[2]) == 0 then
  return 0
end
redis.call('SET', KEYS[3], ARGV[2])
redis.call('SET', KEYS[4], ARGV[3])
redis.call('LPUSH', KEYS[5], ARGV[2])
local old = redis.call('LRANGE', KEYS[5], tonumber(ARGV[4]), -1)
redis.call('LTRIM', KEYS[5], 0, tonumber(ARGV[4]) - 1)
for _, version in ipairs(old) do redis.call('DEL', ARGV[5] .. version) end
return 1
"""


class FeedbackState:
    def __init__(
        self, redis: Redis, keys: Keys, types: dict[str, FeedbackType] | None = None
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.roles = roles_argument(types or DEFAULT_TYPES)
        self._apply = redis.register_script(APPLY_RATINGS)
        # In APPLY_RATINGS's order; the users' own keys are built by the script from the
        # head and tails of their families.
        self._shared_keys = encoded(
            keys.active_users,
            keys.item_likes,
            keys.item_dislikes,
            keys.item_counts_seq,
            keys.item_counts_changes,
            keys.item_counts_reset,
        )
        head, tails = _user_key_parts(
            keys.rated, keys.prefetched, keys.feedback_seq, keys.recent_likes
        )
        self._settings_args = encoded(
            self.roles,
            COLIKE_PAIRS_PER_CALL,
            COLIKES_KEPT,
            RECENT_LIKES_KEPT,
            keys.colikes(""),
            head,
            *tails,
        )
        self._publish = redis.register_script(_PUBLISH)
        self._clear_pending = redis.register_script(CLEAR_IF_EQUAL)

    def apply(self, events: Sequence[StoredEvent]) -> None:
        """Record each user's latest action per item; idempotent on redelivery."""
        # Per user: their id, their latest time (set below), then (item, action, ts)...
        by_user: dict[str, list[str]] = {}
        latest: dict[str, float] = {}
        for event in events:
            fields = by_user.get(event.user_id)
            if fields is None:
                fields = by_user[event.user_id] = [event.user_id, ""]
            timestamp = repr(event.timestamp)
            for item, action in zip(event.item_ids, event.actions, strict=True):
                fields.extend((item, action, timestamp))
            latest[event.user_id] = max(latest.get(event.user_id, 0.0), event.timestamp)
        users = []
        for user, fields in by_user.items():
            fields[1] = repr(latest[user])
            # Ids and actions hold no control characters (services/common/events.py).
            users.append("\n".join(fields))
        pipe = self.redis.pipeline(transaction=False)
        for start in range(0, len(users), USERS_PER_CALL):
            self._apply(
                keys=self._shared_keys,
                args=[*self._settings_args, *users[start : start + USERS_PER_CALL]],
                client=pipe,
            )
        pipe.execute()

    def clear_ratings(self) -> None:
        """Drop every rating and what was counted from them (the log was just cut)."""
        self.redis.unlink(self.keys.item_likes, self.keys.item_dislikes)
        # Every api replica's copy of the counts is now older: they read them again whole.
        self.redis.set(self.keys.item_counts_reset, self.redis.incr(self.keys.item_counts_seq))
        for pattern in (
            self.keys.rated("*"),
            self.keys.recent_likes("*"),
            self.keys.colikes("*"),
        ):
            batch: list[bytes] = []
            for key in self.redis.scan_iter(match=pattern, count=1000):
                batch.append(key)
                if len(batch) >= 500:
                    self.redis.unlink(*batch)
                    batch = []
            if batch:
                self.redis.unlink(*batch)

    def epoch(self) -> str:
        value = self.redis.get(self.keys.epoch)
        return value.decode() if isinstance(value, bytes) else "0"

    def cleanup_pending(self) -> bool:
        """A /cleanup is waiting for the log to be cut: the log may hold wiped events."""
        return bool(self.redis.exists(self.keys.cleanup_pending))

    def finish_cleanup(self, token: str) -> None:
        self._clear_pending(keys=[self.keys.cleanup_pending], args=[token])

    def catalogue_ids(self) -> list[str]:
        return [
            k.decode() if isinstance(k, bytes) else k for k in self.redis.hkeys(self.keys.catalogue)
        ]

    def publish_model(self, model: ServingModel, epoch: str, keep: int) -> bool:
        """Upload the blob, then switch the pointer atomically; False if a wipe intervened."""
        blob_key = self.keys.model_blob(model.version)
        self.redis.set(blob_key, model.to_bytes(), ex=ORPHAN_BLOB_TTL)
        switched = self._publish(
            keys=[
                self.keys.epoch,
                blob_key,
                self.keys.model_current,
                self.keys.model_info,
                self.keys.model_versions,
            ],
            args=[epoch, model.version, json.dumps(model.info()), keep, self.keys.model_blob("")],
        )
        return bool(switched)

    def set_status(self, component: str, note: str | None) -> None:
        if note is None:
            self.redis.hdel(self.keys.status, component)
        else:
            self.redis.hset(self.keys.status, component, note)


def _user_key_parts(*families: Callable[[str], str]) -> tuple[str, list[str]]:
    """The head all the families' keys of a user share, and each family's tail."""
    marker = "\x00"
    parts = [family(marker).split(marker) for family in families]
    heads = {head for head, _ in parts}
    if len(heads) != 1:
        raise ValueError(f"user key families with different heads: {sorted(heads)}")
    return heads.pop(), [tail for _, tail in parts]
