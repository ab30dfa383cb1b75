"""Generated requests for every operation of an app's OpenAPI document: a fixed budget of
derandomized cases per operation and generation mode (valid and invalid), each handed to a
check."""

from __future__ import annotations

from collections.abc import Callable

import hypothesis
import hypothesis.errors
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck
from schemathesis import GenerationMode


def each_case(
    app: FastAPI,
    *,
    examples: int,
    skip: Callable[[str], bool],
    check: Callable[[schemathesis.Case], None],
) -> None:
    """Call ``check`` with ``examples`` cases per operation (not ``skip``ped) and mode."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    for result in schema.get_all_operations():
        operation = result.ok()
        if skip(operation.path):
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @hypothesis.settings(
                max_examples=examples,
                derandomize=True,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
            def run(case: schemathesis.Case) -> None:
                check(case)

            try:
                run()
            except hypothesis.errors.Unsatisfiable:
                # No parameters and no body (GET /healthcheck): no invalid input exists.
                assert mode is GenerationMode.NEGATIVE, operation.path
