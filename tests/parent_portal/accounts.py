"""Helpers for the account tests: set up TOTP the way a person does (read the key off the
page, type the code their app shows), and sign in with it."""

from __future__ import annotations

import re
from datetime import datetime

import pyotp
from httpx2 import Response
from starlette.testclient import TestClient

from tests.factories import PASSWORD
from tests.parent_portal.conftest import login
from tests.parent_portal.forms import hidden_fields, submit

_SECRET = re.compile(r'id="totp-secret">([A-Z2-7 ]+)<')
_CODE = re.compile(r"<li><code>([a-z0-9-]+)</code></li>")


def code_at(secret: str, at: datetime) -> str:
    """What an authenticator app shows at `at`."""
    return pyotp.TOTP(secret).at(at)


def secret_from(page: str) -> str:
    match = _SECRET.search(page)
    assert match, "no TOTP key on the page"
    return match.group(1).replace(" ", "")


def recovery_codes_from(page: str) -> list[str]:
    return _CODE.findall(page)


def enrol(client: TestClient, at: datetime) -> tuple[str, list[str]]:
    """Turn TOTP on for the signed-in user; return the key and the recovery codes."""
    started = submit(client, "/account/totp", "/account/totp/setup")
    assert started.status_code == 303
    page = client.get("/account/totp")
    secret = secret_from(page.text)
    done = client.post("/account/totp/confirm",
                       data={**hidden_fields(page.text, "/account/totp/confirm"),
                             "code": code_at(secret, at)})
    assert done.status_code == 200, done.text
    codes = recovery_codes_from(done.text)
    assert len(codes) == 10
    return secret, codes


def second_step(client: TestClient, code: str) -> Response:
    page = client.get("/login/totp")
    assert page.status_code == 200, page.text
    return client.post("/login/totp",
                       data={**hidden_fields(page.text, "/login/totp"), "code": code})


def login_with_code(client: TestClient, email: str, code: str,
                    password: str = PASSWORD) -> Response:
    first = login(client, email, password)
    assert first.status_code == 303
    assert first.headers["location"] == "/login/totp"
    return second_step(client, code)
