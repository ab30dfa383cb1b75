"""kmock's KubernetesEmulator with the gaps that matter for kopf closed (see docs/kubernetes.md).

1. stamps resourceVersion, uid, generation, creationTimestamp and the namespace from the URL;
2. answers 422 (not 500) when a JSON-patch ``test`` op or a merge fails;
3. honours ``?resourceVersion=`` on WATCH and does not replay the snapshot after a LIST;
4. subscribes to the event bus before taking the snapshot (no lost writes in between);
5. lists carry ``kind``/``resourceVersion`` and honour equality ``labelSelector``s;
6. garbage-collects dependents by ownerReferences when their owner goes away (as the
   kube-controller-manager would), so "delete the CR removes every child" can be observed;
7. rejects a patch carrying a stale ``metadata.resourceVersion`` with 409 Conflict
   (optimistic concurrency, as the real API server does).
8. creates a missing object on a server-side apply PATCH (and otherwise treats the apply
   as a merge patch: field ownership is only modelled by the real server, in tests/cluster).
9. collects an object written with owner references none of which exists any more (the real
   garbage collector deletes such dependents): a scheduler tick that read its RecSystem just
   before the RecSystem was deleted may still re-apply a child afterwards, as nothing (no
   finalizer) holds the RecSystem back until the tick ends.
"""

from __future__ import annotations

import copy
import datetime
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp.web
import jsonpatch
import kmock
from kmock._internal import dicts, enums, rendering

Key = tuple[kmock.resource, str | None, str]


def _now() -> str:
    return datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _selector_matches(selector: str | None, labels: Mapping[str, str]) -> bool:
    if not selector:
        return True
    for term in selector.split(","):
        key, _, value = term.partition("=")
        if labels.get(key.strip()) != value.strip():
            return False
    return True


class RecsysEmulator(kmock.KubernetesEmulator):  # type: ignore[misc]
    """A stateful API server good enough for kopf 1.45 and our operator."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self._rv = 0

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    async def _emit(self, resource: kmock.resource, type_: str, raw: Mapping[str, Any]) -> None:
        await self._buses[resource].put({"type": type_, "object": copy.deepcopy(dict(raw))})

    async def _hard_delete(self, key: Key) -> None:
        obj = self._objects[key]
        raw = copy.deepcopy(obj.raw)
        raw.setdefault("metadata", {})["resourceVersion"] = self._next_rv()
        obj.delete()
        await self._emit(key[0], "DELETED", raw)
        uid = raw["metadata"].get("uid")
        # Garbage collection of dependents (background propagation).
        for other_key, other in list(self._objects.items()):
            if other.deleted:
                continue
            refs = (other.get("metadata") or {}).get("ownerReferences") or []
            if uid and any(ref.get("uid") == uid for ref in refs):
                await self._request_delete(other_key)

    async def _collect_if_orphaned(self, key: Key) -> None:
        refs = (self._objects[key].get("metadata") or {}).get("ownerReferences") or []
        if not refs:
            return
        live = {
            (obj.get("metadata") or {}).get("uid")
            for obj in self._objects.values()
            if not obj.deleted
        }
        if not any(ref.get("uid") in live for ref in refs):
            await self._request_delete(key)

    async def _request_delete(self, key: Key) -> None:
        obj = self._objects[key]
        meta = obj.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            return
        if meta.get("finalizers"):
            obj.patch(
                {"metadata": {"deletionTimestamp": _now(), "resourceVersion": self._next_rv()}}
            )
            await self._emit(key[0], "MODIFIED", obj.raw)
        else:
            await self._hard_delete(key)

    async def _handle(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        if request.resource is not None and request.action in (
            enums.action.CREATE,
            enums.action.UPDATE,
            enums.action.DELETE,
        ):
            try:
                async with self._lock:
                    await self._mutate(request)
            except kmock.KubernetesError as exc:
                return await self._render_error(exc)
        # Skip KubernetesEmulator._handle (its state logic is replaced above); keep routing.
        return await super(kmock.KubernetesEmulator, self)._handle(request)

    async def _mutate(self, request: rendering.Request) -> None:
        resource = request.resource
        assert resource is not None
        action = request.action
        apply = request.headers.get("Content-Type", "").startswith("application/apply-patch")
        if apply and request.name is not None:
            target = (resource, request.namespace, request.name)
            if target not in self._objects or self._objects[target].deleted:
                # Server-side apply creates a missing object. (Otherwise it is treated as a
                # merge patch below: field ownership is the real API server's job, tested by
                # the cluster tier.)
                action = enums.action.CREATE
        if action == enums.action.CREATE:
            data = copy.deepcopy(request.data)
            meta = data.setdefault("metadata", {})
            if request.namespace:
                meta["namespace"] = request.namespace
            key: Key = (resource, meta.get("namespace"), meta["name"])
            if key in self._objects and not self._objects[key].deleted:
                raise kmock.KubernetesError(409, "AlreadyExists", f"{meta['name']} already exists")
            meta.update(
                uid=str(uuid.uuid4()),
                resourceVersion=self._next_rv(),
                generation=1,
                creationTimestamp=_now(),
            )
            if key not in self._objects:
                self._objects[key] = data
            else:
                self._objects[key].create(data)
            await self._emit(resource, "ADDED", data)
            await self._collect_if_orphaned(key)
            return
        if request.name is None:
            return  # collection-level operations are not needed here
        key = (resource, request.namespace, request.name)
        if key not in self._objects or self._objects[key].deleted:
            raise kmock.KubernetesError(404, "NotFound", f"{request.name} not found")
        obj = self._objects[key]
        if action == enums.action.DELETE:
            await self._request_delete(key)
            return
        old = copy.deepcopy(obj.raw)
        wanted = (
            (request.data.get("metadata") or {}).get("resourceVersion")
            if isinstance(request.data, Mapping)
            else None
        )
        current = (old.get("metadata") or {}).get("resourceVersion")
        if wanted is not None and str(wanted) != str(current):
            raise kmock.KubernetesError(
                409,
                "Conflict",
                f"the object has been modified (resourceVersion {wanted} != {current})",
            )
        try:
            new = dict(dicts.patch_dict(old, request.data))
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, ValueError) as exc:
            raise kmock.KubernetesError(422, "Invalid", f"patch failed: {exc}") from exc
        meta = new.setdefault("metadata", {})
        meta["resourceVersion"] = self._next_rv()
        if request.subresource is None and new.get("spec") != old.get("spec"):
            meta["generation"] = int(meta.get("generation") or 1) + 1
        obj.create(new)  # a new version in the history, replacing the content entirely
        await self._emit(resource, "MODIFIED", new)
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            await self._hard_delete(key)
        else:
            await self._collect_if_orphaned(key)

    def _visible(self, request: rendering.Request) -> list[dict[str, Any]]:
        selector = request.params.get("labelSelector")
        result = []
        for (resource, namespace, name), obj in self._objects.items():
            if obj.deleted or resource != request.resource:
                continue
            if request.namespace is not None and namespace != request.namespace:
                continue
            if request.name is not None and name != request.name:
                continue
            labels = (obj.get("metadata") or {}).get("labels") or {}
            if _selector_matches(selector, labels):
                result.append(copy.deepcopy(obj.raw))
        return result

    async def _serve_list(self, request: rendering.Request) -> rendering.Payload:
        if request.resource not in self._get_resources():
            raise kmock.KubernetesResourceNotFoundError()
        async with self._lock:
            items = self._visible(request)
            rv = str(self._rv)
        return {
            "kind": "List",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": rv},
            "items": items,
        }

    async def _serve_watch(self, request: rendering.Request) -> AsyncIterator[rendering.Payload]:
        yield b""
        assert request.resource is not None
        bus = self._buses[request.resource]
        async with self._lock:
            # Subscribe before the snapshot, atomically with it (writes hold the same lock).
            marker = await bus.mark()
            since = request.params.get("resourceVersion")
            if since:
                snapshot: list[dict[str, Any]] = []
                since_rv = int(since)
            else:
                snapshot = self._visible(request)
                since_rv = self._rv
        selector = request.params.get("labelSelector")
        try:
            for raw in snapshot:
                yield {"type": "ADDED", "object": raw}
            async for event in bus.stream(since=marker):
                meta = event["object"].get("metadata") or {}
                if int(meta.get("resourceVersion") or 0) <= since_rv:
                    continue
                if request.namespace is not None and meta.get("namespace") != request.namespace:
                    continue
                if not _selector_matches(selector, meta.get("labels") or {}):
                    continue
                yield event
        finally:
            await bus.unmark(marker)
