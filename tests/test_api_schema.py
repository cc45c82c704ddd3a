"""The OpenAPI schema documents every route, and property-based requests from it never get a 500."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_schema_conformance,
    status_code_conformance,
)

from sigcache.api import create_app
from tests.test_api_server import AUTH, TOKEN, make_facade, serve

ROUTES = {
    ("get", "/healthz"),
    ("get", "/cache/migration/status"),
    ("post", "/cache/migration/enable"),
    ("post", "/cache/migration/disable"),
    ("post", "/cache/migration/phase"),
    ("post", "/cache/migration/backfill"),
    ("get", "/cache/migration/history"),
    ("get", "/cache/signature/stats"),
    ("post", "/cache/signature/clear"),
    ("post", "/cache/signature/cleanup"),
    ("put", "/cache/signature"),
    ("post", "/cache/signature/lookup"),
}
_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    ignored_auth,
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, Any]]]:
    facade = make_facade(tmp_path_factory.mktemp("schema"))
    app = create_app(facade, token=TOKEN)
    with serve(app) as url:
        yield url, app.openapi()
    facade.close()


# The schema does not depend on the facade: an app whose provider is never called describes it.
schema = schemathesis.openapi.from_dict(create_app(token=TOKEN).openapi())


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors(case: Any, served: tuple[str, dict[str, Any]]) -> None:
    case.call_and_validate(base_url=served[0], headers=dict(AUTH), checks=_CHECKS)


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            yield method, path, operation


def test_every_route_is_documented(served: tuple[str, dict[str, Any]]) -> None:
    spec = served[1]
    assert {(m, p) for m, p, _ in _operations(spec)} == ROUTES
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    for method, path, operation in _operations(spec):
        assert operation["description"], (method, path)
        assert "200" in operation["responses"]
        schema_ref = operation["responses"]["200"]["content"]["application/json"]["schema"]
        model = spec["components"]["schemas"][schema_ref["$ref"].rsplit("/", 1)[1]]
        assert {"success", "data"} <= set(model["properties"]), (method, path)
        for parameter in operation.get("parameters", ()):
            assert parameter.get("description"), (path, parameter["name"])
        if path == "/healthz":
            assert "security" not in operation
            continue
        assert operation["security"] == [{"HTTPBearer": []}]
        assert {"401", "422", "500"} <= set(operation["responses"])
    phase = spec["paths"]["/cache/migration/phase"]["post"]
    assert {"400", "409"} <= set(phase["responses"])
    params = {p["name"]: p for p in phase["parameters"]}
    assert params["phase"]["required"] is True
    assert params["phase"]["schema"]["maxLength"] == 64
    assert set(params) == {"phase", "force", "reason"}
