"""Turn a raw RecSystem into a typed spec or a list of human-readable problems."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from recsys_operator.errors import InvalidSpecError
from recsys_operator.spec import RecSystemSpec

MAX_NAME_LENGTH = 40


def _describe(error: Mapping[str, Any]) -> str:
    loc = ".".join(str(part) for part in error.get("loc", ()))
    msg = str(error.get("msg", "invalid"))
    msg = msg.removeprefix("Value error, ")
    return f"spec.{loc}: {msg}" if loc else f"spec: {msg}"


def validate(name: str, spec: Mapping[str, Any]) -> RecSystemSpec:
    """Parse ``spec``; raise :class:`InvalidSpecError` naming every problem found."""
    problems: list[str] = []
    if len(name) > MAX_NAME_LENGTH:
        problems.append(
            f"metadata.name must be at most {MAX_NAME_LENGTH} characters (child names get suffixes)"
        )
    parsed: RecSystemSpec | None = None
    try:
        parsed = RecSystemSpec.model_validate(dict(spec))
    except ValidationError as exc:
        problems.extend(_describe(err) for err in exc.errors())
    if problems or parsed is None:
        raise InvalidSpecError(problems)
    return parsed
