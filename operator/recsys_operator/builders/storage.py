"""The PersistentVolumeClaim holding the durable interaction log, and who owns it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from recsys_operator import constants as c
from recsys_operator.builders.common import Instance, Obj, metadata, owner_reference


def build_data_pvc(inst: Instance) -> Obj:
    """Created once; most PVC fields are immutable, so its spec is never patched afterwards.

    Only ``storage.retainPolicy: Delete`` makes the RecSystem its owner (garbage-collected
    with it). A retained claim has no owner reference, so the garbage collector leaves it, and
    a RecSystem re-created with the same name finds it by name and uses it again.
    """
    storage = inst.spec.storage
    spec: Obj = {
        "accessModes": [storage.access_mode],
        "resources": {"requests": {"storage": storage.size}},
    }
    if storage.storage_class_name:
        spec["storageClassName"] = storage.storage_class_name
    meta = metadata(inst, inst.pvc_name, "data")
    meta["ownerReferences"] = data_pvc_owner_references(inst, [])
    if not meta["ownerReferences"]:
        del meta["ownerReferences"]
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta, "spec": spec}


def data_pvc_owner_references(inst: Instance, live: Sequence[Mapping[str, Any]]) -> list[Obj]:
    """The claim's owner references for the retain policy, keeping anyone else's.

    Any reference to a RecSystem of this name is ours: one with another uid is a deleted
    predecessor whose claim was retained (or is on its way out with it).
    """
    others = [
        dict(ref)
        for ref in live
        if not (
            ref.get("apiVersion") == c.API_VERSION
            and ref.get("kind") == c.KIND
            and ref.get("name") == inst.name
        )
    ]
    if inst.spec.storage.retain_policy == "Delete":
        return [*others, owner_reference(inst)]
    return others
