"""Which /recs requests the prefetched layer answers itself (the rest go to the route)."""

from __future__ import annotations

import pytest

from services.api.prefetched_recs import parse_request


@pytest.mark.parametrize(
    ("path", "query", "expected"),
    [
        ("/recs/u1", b"", ("u1", 10)),
        ("/recs/u1", b"k=25", ("u1", 25)),
        ("/recs/a/b", b"k=1", ("a/b", 1)),
        ("/recs/u1", b"k=0", None),
        ("/recs/u1", b"k=101", None),
        ("/recs/u1", b"k=abc", None),
        ("/recs/u1", b"explain=true", None),
        ("/recs/u1", b"k=3&explain=true", None),
        ("/recs/", b"", None),
        ("/recs/bad\x01id", b"", None),
        ("/recs/" + "x" * 300, b"", None),
    ],
)
def test_only_plain_recs_requests_take_the_prefetched_path(
    path: str, query: bytes, expected: tuple[str, int] | None
) -> None:
    assert parse_request(path, query, default_k=10, max_k=100) == expected
