"""Reading a page's forms the way a browser would: the hidden fields of one form."""

from __future__ import annotations

import html
import re

from httpx2 import Response
from starlette.testclient import TestClient

_FORM = re.compile(r'<form[^>]*action="([^"]+)"[^>]*>(.*?)</form>', re.S)
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def hidden_fields(page: str, action: str) -> dict[str, str]:
    """The hidden inputs of the first form posting to `action`."""
    for target, body in _FORM.findall(page):
        if html.unescape(target) == action:
            return {name: html.unescape(value) for name, value in _HIDDEN.findall(body)}
    raise AssertionError(f"no form posting to {action}")


def submit(client: TestClient, page_url: str, action: str, **fields: str) -> Response:
    """GET the page, then POST the form to `action` with its hidden fields and `fields`."""
    page = client.get(page_url)
    assert page.status_code == 200, page.text
    return client.post(action, data={**hidden_fields(page.text, action), **fields})
