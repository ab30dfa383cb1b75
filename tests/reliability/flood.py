"""A flood of concurrent ``GET /recs`` or ``POST /interact``, run as a process of its own.

``python -m tests.reliability.flood recs|interact HOST PORT CONNECTIONS SECONDS`` keeps
CONNECTIONS keep-alive connections each sending one request after the other for SECONDS,
then prints one JSON line: answers by status, the first error bodies, connection failures,
and how many were in flight at most. A process of its own, not a thread of the test: a
flood thread would hold the test process's GIL and its event loop would delay the probe
being timed, so the test would measure itself. Raw asyncio streams, not httpx: the flood
should cost the shared 2 cores as little as possible, so that the server, not the client,
is what is loaded.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter


def _request(target: str, number: int, request: int) -> bytes:
    # A few users per connection, each asking for several pages (new users are ranked,
    # known ones pop prefetched pages), or liking an item each time, as a real mix would.
    user = f"flood-{number}-{request % 4}"
    if target == "recs":
        return f"GET /recs/{user}?k=10 HTTP/1.1\r\nHost: recsys\r\n\r\n".encode()
    body = json.dumps({"user_id": user, "item_ids": [f"i{request}"], "actions": ["like"]})
    return (
        f"POST /interact HTTP/1.1\r\nHost: recsys\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n{body}"
    ).encode()


async def _connection(
    target: str,
    host: str,
    port: int,
    number: int,
    until: float,
    statuses: Counter[int],
    errors: Counter[bytes],
    busy: list[int],
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        request = 0
        while time.monotonic() < until:
            writer.write(_request(target, number, request))
            request += 1
            busy[0] += 1
            busy[1] = max(busy[1], busy[0])
            try:
                status_line = await reader.readline()
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length)
            finally:
                busy[0] -= 1
            if not status_line:
                statuses[0] += 1
                return
            status = int(status_line.split()[1])
            statuses[status] += 1
            if status != 200:
                errors[body[:120]] += 1
    finally:
        writer.close()


async def flood(
    target: str, host: str, port: int, connections: int, seconds: float
) -> dict[str, object]:
    statuses: Counter[int] = Counter()
    errors: Counter[bytes] = Counter()
    busy = [0, 0]  # in flight now, most in flight at once
    until = time.monotonic() + seconds
    results = await asyncio.gather(
        *(
            _connection(target, host, port, n, until, statuses, errors, busy)
            for n in range(connections)
        ),
        return_exceptions=True,
    )
    failures = [repr(r) for r in results if isinstance(r, BaseException)]
    return {
        "statuses": {str(status): count for status, count in sorted(statuses.items())},
        "errors": {body.decode(errors="replace"): n for body, n in errors.most_common(3)},
        "failures": len(failures),
        "first_failure": failures[0] if failures else None,
        "most_in_flight": busy[1],
    }


if __name__ == "__main__":
    target, host, port, connections, seconds = sys.argv[1:6]
    result = asyncio.run(flood(target, host, int(port), int(connections), float(seconds)))
    sys.stdout.write(json.dumps(result) + "\n")
