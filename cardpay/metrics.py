"""What the till API counts for Prometheus: taps by verdict, and how long each call took.

Counted where the API answers (`cardpay.api`), not inside `Till.tap`: a tap is counted
each time a verdict is sent, so a till that retries a tap whose answer it lost counts it
twice (rare: it retries only after a timeout). `mode` is `offline` for a tap the till
decided alone while the server was unreachable and sent later, `online` otherwise;
`repeat` is true for a card tapped again within seconds (answered, not charged again).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.routing import APIRoute
from prometheus_client import Counter, Histogram
from starlette.requests import Request
from starlette.responses import Response

from cardpay.verdicts import Verdict

logger = logging.getLogger(__name__)

TAPS = Counter(
    "moulin_till_taps", "Taps answered by the till API, by verdict.",
    ["verdict", "reason", "mode", "repeat"],
)
TILL_API_SECONDS = Histogram(
    "moulin_till_api_seconds", "Till API calls, from request to response, by endpoint.",
    ["endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 1.5, 2.5, 5.0),
)


def tap_answered(verdict: Verdict) -> None:
    """Count the verdict and log it (no card UID, no name: the tap id finds the rest).

    A meal paid at the till, the bulk of a lunch, is logged at DEBUG: it is in the ledger,
    the till feed and the counters, and a line for each cost the busy server a tenth of
    its time. A refusal, a re-tap and a tap made offline are logged at INFO: they are
    what staff ask about."""
    word = "accepted" if verdict.accepted else "refused"
    mode = "offline" if verdict.decided_offline else "online"
    TAPS.labels(word, verdict.reason, mode, "true" if verdict.repeat else "false").inc()
    routine = verdict.accepted and not verdict.decided_offline and not verdict.repeat
    logger.log(logging.DEBUG if routine else logging.INFO, "tap %s: %s (%s), %s%s",
               verdict.tap_id, word, verdict.reason, mode, ", repeat" if verdict.repeat else "")


class TimedRoute(APIRoute):
    """An API route whose calls are timed into `TILL_API_SECONDS`, failures included."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = self.untimed_handler()
        observe = TILL_API_SECONDS.labels(self.path_format).observe

        async def timed(request: Request) -> Response:
            started = time.perf_counter()
            try:
                return await handler(request)
            finally:
                observe(time.perf_counter() - started)

        return timed

    def untimed_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return super().get_route_handler()
