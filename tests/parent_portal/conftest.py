"""Fixtures for the portal: an app on the test database with a settable clock, a client,
and helpers that sign in the way a browser does (GET the form, POST it with its token)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from httpx2 import Response
from sqlalchemy.engine import Engine
from starlette.testclient import TestClient

from parent_portal.app import create_app
from school.settings import Settings
from tests.conftest import FakeClock
from tests.factories import PASSWORD

CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def app(settings: Settings, engine: Engine, clock: FakeClock) -> FastAPI:
    return create_app(settings, engine, clock=clock)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as c:
        yield c


def csrf_from(html: str) -> str:
    match = CSRF_INPUT.search(html)
    assert match, "no csrf_token field on the page"
    return match.group(1)


def login(client: TestClient, email: str, password: str = PASSWORD, **extra: str) -> Response:
    page = client.get("/login")
    assert page.status_code == 200
    data = {"email": email, "password": password, "csrf_token": csrf_from(page.text), **extra}
    return client.post("/login", data=data)


def signed_in(client: TestClient, email: str) -> TestClient:
    response = login(client, email)
    assert response.status_code == 303, response.text
    return client
