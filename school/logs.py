"""Logging for every Moulin process: plain lines for people, or one JSON object a line
(`log_format = "json"`) for a log collector, with the context of what was being done.

Context fields are set where the work is known — the web request's id (`RequestIds`, a
plain ASGI middleware), the device a till API call came from, the camera a stream shows
(`log_context`, `bind`) — or once for the whole process (`set_process_fields`, e.g. a
camera node's device). Every line is passed through `redact`, the one routine for URLs,
query strings and paths: signed stream URLs, camera logins, reset and invitation links
and bearer tokens (uvicorn's access log prints full URLs) never reach the log.
Code must still never log a password, a token, a card key or a full card UID: use
`hardware.readers.base.masked_uid` for cards.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Literal

LogFormat = Literal["text", "json"]
_context: ContextVar[Mapping[str, object]] = ContextVar(
    "moulin_log_context", default=MappingProxyType({}))
_process: dict[str, object] = {}

# What a log line must not carry, wherever it appears (a message, an access-log line, an
# exception): query values that are secrets (`t=` carries a signed stream URL's token,
# `user=`/`pwd=` a camera's login), the user and password of a URL, the token in a
# single-use link's path, and bearer tokens.
_SECRET_KEYS = ("t", "token", "key", "password", "passwd", "pass", "pwd", "user", "username",
                "login", "secret", "sig", "signature", "auth", "apikey", "api_key",
                "access_token", "code", "device")
_TOKEN_PATHS = ("/login/reset/", "/welcome/")
_SECRETS = (
    (re.compile(r"([?&;](?:" + "|".join(_SECRET_KEYS) + r")=)[^&;#\s\"']+", re.IGNORECASE),
     r"\1[redacted]"),
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^/@\s\"']+@", re.IGNORECASE), r"\1[redacted]@"),
    (re.compile("(" + "|".join(re.escape(p) for p in _TOKEN_PATHS) + r")[^/?#\s\"']+"),
     r"\1[redacted]"),
    (re.compile(r"(\bBearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE), r"\1[redacted]"),
)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def redact(text: str) -> str:
    """`text` without the secrets a URL, a query string or a path may carry. Every line
    the handler of `configure` writes goes through here (uvicorn's access log included)."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


def current_context() -> dict[str, object]:
    return {**_process, **_context.get()}


@contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Add `fields` to every line logged in this block (this thread or task only)."""
    token = _context.set({**_context.get(), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def bind(**fields: object) -> None:
    """Add `fields` until the current task or thread ends (for an async endpoint whose
    response outlives the handler, such as a stream)."""
    _context.set({**_context.get(), **fields})


class _Context(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.moulin_context = current_context()
        return True


class TextFormatter(logging.Formatter):
    """`2026-11-24 11:30:00,123 INFO cardpay.api: tap … [request_id=… device=till:3]`"""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = getattr(record, "moulin_context", None) or {}
        if context:
            line += " [" + " ".join(f"{k}={v}" for k, v in context.items()) + "]"
        return redact(line)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, the context
    fields, and the traceback as `exception` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        context = getattr(record, "moulin_context", None) or {}
        entry.update({k: v for k, v in context.items() if k not in entry})
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            entry["exception"] = redact(record.exc_text)
        return json.dumps(entry, ensure_ascii=False, default=str)


def formatter(fmt: LogFormat) -> logging.Formatter:
    return JsonFormatter() if fmt == "json" else TextFormatter()


def set_process_fields(**fields: object) -> None:
    """Fields for every line this process logs, from any thread (e.g. its device)."""
    _process.clear()
    _process.update(fields)


def configure(fmt: LogFormat = "text", *, level: int = logging.INFO) -> None:
    """Send every logger's lines to stderr in `fmt`; safe to call again."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "moulin", False)]:
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.moulin = True  # type: ignore[attr-defined]
    handler.addFilter(_Context())
    handler.setFormatter(formatter(fmt))
    root.addHandler(handler)
    root.setLevel(level)
    if level > logging.DEBUG:
        logging.getLogger("alembic").setLevel(logging.WARNING)
        logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise


def configured() -> bool:
    """Has `configure` run in this process?"""
    return any(getattr(h, "moulin", False) for h in logging.getLogger().handlers)


class RequestIds:
    """A request id for each HTTP request: the proxy's `X-Request-ID` when it is a sane
    one, else a fresh one; in every line logged for the request and in the response."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or ()).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex

        async def send_with_id(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()),
                                      (b"x-request-id", request_id.encode())]
            await send(message)

        with log_context(request_id=request_id):
            await self.app(scope, receive, send_with_id)
