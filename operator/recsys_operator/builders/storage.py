"""The PersistentVolumeClaim holding the durable interaction log."""

from __future__ import annotations

from recsys_operator.builders.common import Instance, Obj, metadata


def build_data_pvc(inst: Instance) -> Obj:
    """Created once; most PVC fields are immutable, so it is never patched afterwards."""
    storage = inst.spec.storage
    spec: Obj = {
        "accessModes": [storage.access_mode],
        "resources": {"requests": {"storage": storage.size}},
    }
    if storage.storage_class_name:
        spec["storageClassName"] = storage.storage_class_name
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": metadata(inst, inst.pvc_name, "data"),
        "spec": spec,
    }
