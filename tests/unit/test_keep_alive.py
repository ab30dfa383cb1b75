"""The servers keep an idle connection open longer than clients keep theirs for reuse: the
side that closes first must be the client, or a request sent on a connection the server is
closing is dropped with no answer (httpx ReadError, seen in the online benchmark)."""

from __future__ import annotations

import httpx

from services.common.settings import Settings

# Idle times after which common clients and proxies stop reusing a connection: httpx's
# default pool, nginx's upstream keepalive_timeout, Go's http.Transport IdleConnTimeout.
CLIENT_IDLE_SECONDS = {
    "httpx": httpx.Limits().keepalive_expiry or 0.0,
    "nginx": 60.0,
    "go": 90.0,
}


def test_idle_connections_outlive_the_clients_pools() -> None:
    timeout = Settings().http_keep_alive_timeout
    assert all(timeout > idle for idle in CLIENT_IDLE_SECONDS.values()), CLIENT_IDLE_SECONDS
