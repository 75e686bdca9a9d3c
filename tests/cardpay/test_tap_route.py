"""The tap route answers without FastAPI's dependency solving (cardpay.api.TapRoute): it
must still run what the app runs for every route, or refuse to be built."""

from __future__ import annotations

from typing import Annotated

import pytest
from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.testclient import TestClient

from cardpay import api


def test_the_apps_own_dependencies_run_before_the_token_is_read() -> None:
    seen: list[str] = []

    async def closed_for_maintenance(request: Request) -> None:
        seen.append(request.url.path)
        raise HTTPException(503, "closed for maintenance")

    app = FastAPI(dependencies=[Depends(closed_for_maintenance)])
    api.add_tap_route(app)  # no database at all: the token is never looked up
    with TestClient(app) as client:
        response = client.post("/api/till/taps", json={}, headers={"Authorization": "Bearer x"})
    assert response.status_code == 503
    assert seen == ["/api/till/taps"]


def test_a_dependency_it_cannot_run_stops_the_app_from_being_built() -> None:
    async def wants_a_header(x_school: Annotated[str, Header()]) -> None:
        return None

    with pytest.raises(TypeError, match="cannot run the dependency"):  # noqa: PT012
        app = FastAPI(dependencies=[Depends(wants_a_header)])
        api.add_tap_route(app)
        with TestClient(app) as client:
            client.post("/api/till/taps", json={})
