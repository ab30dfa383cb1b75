"""Every answer of both services conforms to their OpenAPI documents (schemathesis's
status code, content type and response schema checks), for valid and invalid requests,
with the real Redis and RabbitMQ behind them; and the states the fuzzer cannot reach by
chance (no model yet, a broker that is down) are checked on purpose."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from schemathesis.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from services.api.main import create_app as create_api
from services.collector.main import create_app as create_collector
from services.common.settings import Settings
from tests.conftest import broker_down_url
from tests.fuzz.cases import each_case

EXAMPLES = 25  # per operation and generation mode: a fixed, CI-sized budget
TOKEN = "conformance-admin-token"
CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance]


def conform(app: FastAPI) -> dict[str, int]:
    """Call every operation (but /cleanup) with generated cases; each answer must conform."""
    seen: dict[str, int] = {}

    def check(case: schemathesis.Case) -> None:
        response = case.call(headers={"X-Admin-Token": TOKEN})
        label = f"{case.method} {case.path} {response.status_code}"
        seen[label] = seen.get(label, 0) + 1
        case.validate_response(response, checks=CHECKS)

    # Not /cleanup: it would wipe the instance mid-run.
    each_case(app, examples=EXAMPLES, skip=lambda path: path == "/cleanup", check=check)
    return seen


@pytest.mark.parametrize("factory", [create_api, create_collector], ids=["api", "collector"])
def test_answers_conform_to_the_openapi_document(
    settings: Settings, factory: Callable[[Settings], FastAPI]
) -> None:
    seen = conform(factory(settings.model_copy(update={"admin_token": TOKEN})))
    assert any(label.endswith(" 422") for label in seen), seen  # refusals were checked too
    assert any(label.endswith(" 200") for label in seen), seen


def validate(app: FastAPI, method: str, path: str, response: object) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operation = schema[path][method].ok() if hasattr(schema[path][method], "ok") else None
    case = (operation or schema[path][method]).Case()
    case.validate_response(response, checks=CHECKS)  # type: ignore[arg-type]


def test_model_404_and_healthcheck_503_conform(settings: Settings) -> None:
    app = create_api(settings)
    with TestClient(app) as client:
        missing = client.get("/model")
        assert missing.status_code == 404
        validate(app, "GET", "/model", missing)
    down = settings.model_copy(update={"amqp_url": broker_down_url(settings)})
    for factory in (create_api, create_collector):
        app = factory(down)
        with TestClient(app) as client:
            health = client.get("/healthcheck")
        assert health.status_code == 503 and health.json()["down"], health.text
        validate(app, "GET", "/healthcheck", health)
