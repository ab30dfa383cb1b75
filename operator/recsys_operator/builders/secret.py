"""The generated admin-token Secret (only when the RecSystem does not bring its own)."""

from __future__ import annotations

import base64

from recsys_operator.builders.common import Instance, Obj, metadata


def build_admin_secret(inst: Instance, token: str) -> Obj:
    """A Secret holding ``token``; the caller creates it once and never overwrites it."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": metadata(inst, inst.admin_secret_name, "admin"),
        "data": {inst.admin_secret_key: base64.b64encode(token.encode()).decode()},
    }
