"""The portal's OpenAPI description, for tests and tools in-process; it is not served.

FastAPI describes each route's declared parameters; what it cannot see is the
anti-forgery token that the app-wide CSRF dependency reads from every form POST, so it
is added here to each browser form operation (the device API under /api/ needs none).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from parent_portal.csrf import API_PREFIX, CSRF_FIELD

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
UNSAFE = ("post", "put", "patch", "delete")


class PortalApp(FastAPI):
    """FastAPI with the portal's additions to the generated schema."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            self.openapi_schema = with_csrf_fields(super().openapi())
        return self.openapi_schema


def with_csrf_fields(schema: dict[str, Any]) -> dict[str, Any]:
    """Declare the required `csrf_token` field on every form operation of the schema."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for path, operations in schema.get("paths", {}).items():
        if path.startswith(API_PREFIX):
            continue
        for method, operation in operations.items():
            if method in UNSAFE:
                _add_token(operation, components)
    return schema


def _add_token(operation: dict[str, Any], components: dict[str, Any]) -> None:
    content = operation.setdefault("requestBody", {"required": True}).setdefault("content", {})
    forms = [content[t] for t in FORM_TYPES if t in content]
    if not forms:
        content[FORM_TYPES[0]] = {"schema": {"type": "object", "properties": {}}}
        forms = [content[FORM_TYPES[0]]]
        operation["requestBody"]["required"] = True
    for media in forms:
        body = media.setdefault("schema", {"type": "object"})
        ref = body.get("$ref", "")
        if ref.startswith("#/components/schemas/"):
            body = components[ref.rsplit("/", 1)[1]]
        body.setdefault("properties", {})[CSRF_FIELD] = {
            "type": "string", "title": "Anti-forgery token",
            "description": "the csrf_token field of the page the form came from",
        }
        required = body.setdefault("required", [])
        if CSRF_FIELD not in required:
            required.append(CSRF_FIELD)
