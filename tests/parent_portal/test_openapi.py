"""The OpenAPI description the schemathesis walk uses: it covers every route, and says
that every browser form carries the anti-forgery token. It is not served."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from parent_portal.csrf import CSRF_FIELD
from tests.parent_portal.conftest import TestClient


def form_schema(schema: dict[str, Any], operation: dict[str, Any]) -> dict[str, Any] | None:
    content = operation.get("requestBody", {}).get("content", {})
    for media in ("application/x-www-form-urlencoded", "multipart/form-data"):
        if media in content:
            body: dict[str, Any] = content[media]["schema"]
            ref = body.get("$ref", "")
            return schema["components"]["schemas"][ref.rsplit("/", 1)[1]] if ref else body
    return None


def test_every_route_is_described(app: FastAPI) -> None:
    described = {(method.upper(), path) for path, ops in app.openapi()["paths"].items()
                 for method in ops}
    routes = {(method, route.path) for route in iter_route_contexts(app.routes)
              if isinstance(route.original_route, APIRoute)
              for method in (route.methods or set()) - {"HEAD"}}
    assert routes
    assert routes == described


def test_every_form_declares_the_anti_forgery_token(app: FastAPI) -> None:
    schema = app.openapi()
    forms = 0
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            body = form_schema(schema, operation)
            if path.startswith("/api/") or method == "get":
                assert body is None or CSRF_FIELD not in body.get("properties", {}), path
                continue
            assert body is not None, f"{method} {path}"
            assert body["properties"][CSRF_FIELD]["type"] == "string"
            assert CSRF_FIELD in body["required"], f"{method} {path}"
            forms += 1
    assert forms > 20
    photo = form_schema(schema, schema["paths"]["/staff/pupils/{pupil_id}/photo"]["post"])
    assert photo is not None
    assert set(photo["required"]) == {"photo", CSRF_FIELD}


def test_the_description_is_not_served(client: TestClient) -> None:
    for path in ("/openapi.json", "/docs", "/redoc"):
        assert client.get(path).status_code == 404
