"""/docs works offline, and the OpenAPI documents say what the services really answer."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.api.main import create_app as create_api
from services.collector.main import create_app as create_collector
from services.common.settings import Settings

FACTORIES: dict[str, Callable[[Settings], FastAPI]] = {
    "api": create_api,
    "collector": create_collector,
}


@pytest.fixture(params=list(FACTORIES))
def client(request: pytest.FixtureRequest, settings: Settings) -> Iterator[TestClient]:
    with TestClient(FACTORIES[request.param](settings)) as test_client:
        yield test_client


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_only_assets_the_service_serves(client: TestClient, page: str) -> None:
    html = client.get(page)
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html.text)
    urls += re.findall(r"""url:\s*["']([^"']+)["']""", html.text)  # the OpenAPI document
    assert any(u.endswith(".js") for u in urls), urls
    assert not [u for u in urls if "//" in u], "a page asset from another host (a CDN)"
    for url in urls:
        asset = client.get(url)
        assert asset.status_code == 200 and len(asset.content) > 100, url


def operations(client: TestClient) -> Iterator[tuple[str, str, dict]]:
    schema = client.get("/openapi.json").json()
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def error_schema(response: dict) -> str:
    return str(response["content"]["application/json"]["schema"]["$ref"])


def test_every_operation_is_described_with_its_error_answers(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in schema["components"]["schemas"]  # not what we send
    for path, method, operation in operations(client):
        where = f"{method.upper()} {path}"
        assert operation.get("description"), f"{where} has no description"
        responses = operation["responses"]
        # Health probes are exempt from the overload limit: their 503 is their own body.
        unavailable = "/HealthBody" if path == "/healthcheck" else "/ErrorBody"
        assert error_schema(responses["503"]).endswith(unavailable), where
        if "422" in responses:
            assert error_schema(responses["422"]).endswith("/ErrorBody"), where
        if "requestBody" in operation:
            assert error_schema(responses["413"]).endswith("/ErrorBody"), where
    paths = schema["paths"]
    if "/model" in paths:
        assert error_schema(paths["/model"]["get"]["responses"]["404"]).endswith("/ErrorBody")
    body = schema["components"]["schemas"]["ErrorBody"]
    assert body["required"] == ["error"] and "detail" in body["properties"]
