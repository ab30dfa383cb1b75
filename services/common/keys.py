"""Redis key names of one instance; every key starts with the instance prefix."""

from __future__ import annotations

from dataclasses import dataclass


def encoded(*values: object) -> list[str | bytes]:
    """Script arguments (key names, settings) encoded once: bytes pass the Redis client's
    per-argument encoder untouched, on paths that make a call per request or per batch."""
    return [str(value).encode() for value in values]


@dataclass(frozen=True)
class Keys:
    prefix: str

    @property
    def catalogue(self) -> str:
        """HASH item id -> JSON list of genres."""
        return f"{self.prefix}catalogue"

    @property
    def titles(self) -> str:
        """HASH item id -> display title (optional; only the demo page reads it)."""
        return f"{self.prefix}catalogue:titles"

    @property
    def catalogue_version(self) -> str:
        """Counter bumped whenever the catalogue changes, so api replicas reload it. A
        /cleanup bumps it too and never deletes it: a version is never reused, so no cache
        keyed by it (any replica's) can mistake a new catalogue for a wiped one."""
        return f"{self.prefix}catalogue:version"

    @property
    def item_impressions(self) -> str:
        """HASH item id -> how many users it was shown to (the bandit's trials)."""
        return f"{self.prefix}items:impressions"

    @property
    def item_likes(self) -> str:
        """HASH item id -> how many users like it now (a positive feedback type): the
        bandit's rewards."""
        return f"{self.prefix}items:likes"

    @property
    def item_dislikes(self) -> str:
        """HASH item id -> how many users watched it without liking it now (a negative or a
        watched feedback type): a partial reward."""
        return f"{self.prefix}items:dislikes"

    @property
    def item_counts_seq(self) -> str:
        """Counter bumped by every write that changes an item's counts above. Survives a
        /cleanup, so a replica's cursor into it is never mistaken across a wipe."""
        return f"{self.prefix}items:counts:seq"

    @property
    def item_counts_changes(self) -> str:
        """ZSET of the items each count change moved (their ids joined by newlines) ->
        its ``item_counts_seq``: what an api replica reads to bring its copy of the counts
        up to date, instead of all of them (services/core/item_counts.py)."""
        return f"{self.prefix}items:counts:changes"

    @property
    def item_counts_reset(self) -> str:
        """The ``item_counts_seq`` of the latest wipe of counts (a /cleanup, the ratings
        log cut) or cut of the change log: a replica whose copy is older reads every count
        again."""
        return f"{self.prefix}items:counts:reset"

    @property
    def users_shown(self) -> str:
        """HYPERLOGLOG of the users shown anything: what item impressions are a share of."""
        return f"{self.prefix}users:shown"

    def colikes(self, item_id: str) -> str:
        """ZSET item id -> how many users liked both it and ``item_id``."""
        return f"{self.prefix}colikes:{item_id}"

    def rated(self, user_id: str) -> str:
        """HASH item id -> "<action>|<ts>" (latest action wins; services/core/ratings.py)."""
        return f"{self.prefix}user:{user_id}:rated"

    def recent_likes(self, user_id: str) -> str:
        """LIST of the user's latest liked item ids (newest first, capped): whom a new like
        is counted as co-liked with."""
        return f"{self.prefix}user:{user_id}:likes"

    def shown(self, user_id: str) -> str:
        """SET of item ids already recommended to the user (impressions)."""
        return f"{self.prefix}user:{user_id}:shown"

    def prefetched(self, user_id: str) -> str:
        """LIST: a header ("1" if ranked with a model, else "0"), then the user's next items,
        each prefixed with its one-letter source (m, p, e), consumed by /recs page by page."""
        return f"{self.prefix}user:{user_id}:next"

    def feedback_seq(self, user_id: str) -> str:
        """Counter bumped with every rating the trainer applies: a list ranked before the
        latest rating is never stored."""
        return f"{self.prefix}user:{user_id}:seq"

    @property
    def active_users(self) -> str:
        """ZSET user id -> time of their latest rating: whose lists to prefetch first."""
        return f"{self.prefix}users:active"

    @property
    def cleanup_pending(self) -> str:
        """STRING: the token of a /cleanup whose control message the ingester has not yet
        acted on; while it exists the log may still hold wiped events, so nobody trains."""
        return f"{self.prefix}cleanup:pending"

    @property
    def epoch(self) -> str:
        """Counter bumped by /cleanup; a model trained before a wipe is never published."""
        return f"{self.prefix}epoch"

    @property
    def model_current(self) -> str:
        return f"{self.prefix}model:current"

    @property
    def model_info(self) -> str:
        return f"{self.prefix}model:info"

    @property
    def model_versions(self) -> str:
        """LIST of published versions, newest first (old blobs are pruned)."""
        return f"{self.prefix}model:versions"

    @property
    def model_selection(self) -> str:
        """JSON: the trainer's last model selection and where the published model's item
        neighbours came from, with the epoch and log they hold for; a fresh trainer (a
        Kubernetes Job) reuses them instead of selecting again."""
        return f"{self.prefix}model:selection"

    def model_blob(self, version: str) -> str:
        return f"{self.prefix}model:blob:{version}"

    @property
    def status(self) -> str:
        """HASH of component status notes shown by /healthcheck (e.g. a rebuild in progress)."""
        return f"{self.prefix}status"

    @property
    def pattern(self) -> str:
        return f"{self.prefix}*"
