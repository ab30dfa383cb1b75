"""What the OpenAPI documents say about errors and health, so they match the answers.

Every error of both services has one body, ``{"error": "...", "detail": [...]}``
(services.common.http); FastAPI's default 422 schema (``HTTPValidationError``) describes
another. Every operation can also meet the shared middleware's refusals: 503 when the
process is overloaded, 413 for a body over the limit, 400 for one that is not JSON.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

REF = "#/components/schemas/"


class ErrorDetail(BaseModel):
    """One refused part of the request, as pydantic reports it."""

    loc: list[str | int] = Field(description='where, e.g. ["query", "k"]')
    msg: str
    type: str | None = None


class ErrorBody(BaseModel):
    """The body of every 4xx and 5xx answer; ``detail`` lists the refused inputs of a 422."""

    error: str
    detail: list[ErrorDetail] | None = None


class HealthBody(BaseModel):
    """What /healthcheck answers (only the parts that apply are present)."""

    status: Literal["ok", "degraded", "unavailable"]
    down: dict[str, str] | None = Field(None, description="what does not answer (503 only)")
    degraded: dict[str, str] | None = Field(
        None, description="what fails while the service still serves (200)"
    )
    model_version: str | None = None
    queue_depth: int | None = None
    notes: dict[str, str] | None = None


def error(description: str) -> dict[str, Any]:
    """A ``responses=`` entry answered with the error body."""
    return {"model": ErrorBody, "description": description}


def health_responses() -> dict[int | str, dict[str, Any]]:
    return {
        200: {"model": HealthBody, "description": "serving (status ok or degraded)"},
        503: {"model": HealthBody, "description": "a dependency is down (named in down)"},
    }


class InvalidInput(HTTPException):
    """A 422 refused by a rule of ours: the message as ``error``, and ``detail`` naming the
    input as pydantic's refusals do."""

    def __init__(self, loc: tuple[str | int, ...], message: str, kind: str) -> None:
        super().__init__(422, message)
        self.errors = [{"loc": list(loc), "msg": message, "type": kind}]


def invalid(loc: tuple[str | int, ...], message: str, kind: str) -> InvalidInput:
    return InvalidInput(loc, message, kind)


def describe_errors(app: FastAPI) -> None:
    """Make ``app``'s OpenAPI document name the error body and the shared refusals."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            _patch(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _patch(schema: dict[str, Any]) -> None:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (ErrorDetail, ErrorBody):
        components.setdefault(model.__name__, model.model_json_schema(ref_template=REF + "{model}"))
    components["ErrorBody"].pop("$defs", None)
    body = {"application/json": {"schema": {"$ref": REF + "ErrorBody"}}}
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            responses = operation.setdefault("responses", {})
            if "422" in responses:
                responses["422"]["content"] = body
            responses.setdefault("503", {"description": "overloaded: retry later", "content": body})
            if "requestBody" in operation:
                responses.setdefault(
                    "400", {"description": "the body could not be read as JSON", "content": body}
                )
                responses.setdefault(
                    "413", {"description": "request body over the size limit", "content": body}
                )
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
