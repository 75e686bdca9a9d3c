"""The daemon's side of the till API: post a journaled tap, fetch the offline snapshot.

Errors are converted where they enter, so the daemon sees only these::

    ReaderDaemonError
    ├── ServerUnreachable   no answer in time, a broken connection, a 5xx, a 429 (this
    │                       address sent too many bad tokens): decide offline, retry later
    │   └── TokenRejected   the server answered 401: this till's token is unknown or revoked
    └── TapNotAccepted      a 4xx for this tap (too old, a tap id of another till): the
                            server will never take it; reported, and not retried
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any

import httpx

from cardpay.errors import CardPayError
from cardpay.reader.journal import JournaledTap

logger = logging.getLogger(__name__)

TAPS_PATH = "/api/till/taps"
SNAPSHOT_PATH = "/api/till/snapshot"
# How the daemon reports its journal to the server (read there by school.device_reports).
QUEUE_HEADER = "X-Moulin-Queue"
LAST_SYNC_HEADER = "X-Moulin-Last-Sync"


class ReaderDaemonError(CardPayError):
    """Base of the reader daemon's errors."""


class ServerUnreachable(ReaderDaemonError):
    pass


class TokenRejected(ServerUnreachable):
    pass


class TapNotAccepted(ReaderDaemonError):
    pass


def tap_body(tap: JournaledTap) -> dict[str, Any]:
    """The JSON the till API takes for a journaled tap."""
    card = {"uid": tap.card["uid"]}
    if tap.card.get("sun_url"):
        card["sun_url"] = tap.card["sun_url"]
    offline = tap.offline_verdict
    return {
        "tap_id": tap.tap_id,
        "read_at": tap.read_at.isoformat(),
        "card": card,
        "offline_accepted": None if offline is None else bool(offline["accepted"]),
    }


class TillClient:
    """One HTTP connection pool to the server, authenticated with the till's token."""

    def __init__(
        self,
        server: str,
        token: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 5.0,
    ) -> None:
        self._timeout = timeout
        self._http = httpx.Client(
            base_url=server.rstrip("/"),
            headers={"Authorization": f"Bearer {token}", "User-Agent": "moulin-reader"},
            transport=transport,
            timeout=timeout,
            # A till on a school LAN talks to its own server, never through a proxy.
            trust_env=False,
        )

    def post_tap(self, tap: JournaledTap, *, deadline: float | None = None) -> dict[str, Any]:
        """The server's verdict for `tap`; `deadline` is a `time.monotonic()` instant."""
        return self._call("POST", TAPS_PATH, deadline, json=tap_body(tap))

    def snapshot(self, *, queue: int | None = None, last_sync: datetime | None = None,
                 ) -> dict[str, Any]:
        """The offline snapshot; `queue` and `last_sync` tell the server how this till's
        journal is doing, for the staff health page and monitoring."""
        headers = {}
        if queue is not None:
            headers[QUEUE_HEADER] = str(queue)
            if last_sync is not None:
                headers[LAST_SYNC_HEADER] = last_sync.isoformat()
        return self._call("GET", SNAPSHOT_PATH, None, headers=headers)

    def _call(
        self, method: str, path: str, deadline: float | None, **kwargs: Any
    ) -> dict[str, Any]:
        timeout = self._timeout
        if deadline is not None:
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                raise ServerUnreachable("no time left before the deadline")
        try:
            response = self._http.request(method, path, timeout=timeout, **kwargs)
        except httpx.TimeoutException as exc:
            raise ServerUnreachable(f"no answer within {timeout:.2f} s") from exc
        except httpx.TransportError as exc:
            raise ServerUnreachable(f"cannot reach the server: {exc!r}") from exc
        if response.status_code == 401:
            raise TokenRejected("the server refused this till's token (unknown or revoked)")
        if response.status_code >= 500 or response.status_code == 429:
            # A 429 is about this address, not this tap: the tap must be kept and retried.
            raise ServerUnreachable(f"server answered {response.status_code}")
        if response.status_code >= 400:
            raise TapNotAccepted(f"{response.status_code}: {_detail(response)}")
        try:
            body = response.json()
        except ValueError as exc:
            raise ServerUnreachable("the server's answer is not JSON") from exc
        if not isinstance(body, dict):
            raise ServerUnreachable("the server's answer is not a JSON object")
        return body

    def close(self) -> None:
        self._http.close()


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    return str(detail) if detail else response.reason_phrase
