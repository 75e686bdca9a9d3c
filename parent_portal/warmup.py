"""Work the first request would otherwise do, done at start-up instead.

FastAPI (from 0.137) builds each included router's table of routes, with every
endpoint's dependencies and validators, on the first request that reaches that router:
about a third of a second for ours on a small machine. The first tap of the morning
would wait for it, and so would every tap queued behind it. One request that matches
no route walks every router, so they are all built before the server takes requests.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import Message, Scope

NO_ROUTE = "/.well-known/moulin/start-up"


async def build_routes(app: FastAPI) -> int:
    """Walk the router with a request that matches nothing (no middleware, no log, no
    metric); the status it got, 404."""
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": NO_ROUTE,
        "raw_path": NO_ROUTE.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [],
        "client": None,
        "server": None,
    }
    status: list[int] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app.router(scope, receive, send)
    return status[0]
