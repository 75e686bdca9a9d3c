"""`GET /metrics` in the Prometheus text format, for the portal and camera nodes alike.

Who may read it: with a `metrics_token` configured, whoever sends it as a bearer token;
without one, only a client on this machine (loopback). Behind a reverse proxy that does
not pass the client's address on (`X-Forwarded-For`, see `forwarded_allow_ips`), every
request would look local: configure a token then, or keep `/metrics` off the proxy.

What it shows: this process's metrics (counters, histograms, the process's CPU and
memory), then the collectors each app adds, which read live state (viewers, the till
reports in the database) when scraped. Under `moulin serve --workers N` the counters and
histograms are kept in files shared by the workers (prometheus_client's multiprocess
mode, `PROMETHEUS_MULTIPROC_DIR`): any worker answers with every worker's totals, and
process metrics are left out, since they would describe only the worker that answered.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Awaitable, Callable, Iterable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def allowed(*, client_host: str | None, authorization: str | None, token: str) -> bool:
    """May this request read the metrics? (See the module's docstring.)"""
    if token:
        scheme, _, given = (authorization or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), token.encode()
        )
    try:
        return client_host is not None and ipaddress.ip_address(client_host).is_loopback
    except ValueError:  # "testclient", a Unix socket path: not an address
        return False


class _Together:
    """Several collectors scraped as one registry."""

    def __init__(self, collectors: Iterable[Collector]) -> None:
        self._collectors = list(collectors)

    def collect(self) -> Iterator[Metric]:
        for collector in self._collectors:
            yield from collector.collect()


def own_metrics() -> Collector:
    """This process's registry, or every worker's counters in multiprocess mode."""
    path = os.environ.get(MULTIPROC_ENV)
    if path:
        return MultiProcessCollector(None, path=path)  # type: ignore[no-untyped-call]
    return REGISTRY


def exposition(extra: Iterable[Collector] = ()) -> bytes:
    return generate_latest(_Together([own_metrics(), *extra]))


def metrics_endpoint(
    token: str, collectors: Callable[[], Iterable[Collector]]
) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint serving `exposition` of `collectors()` to allowed clients."""

    async def metrics(request: Request) -> Response:
        if not allowed(client_host=request.client.host if request.client else None,
                       authorization=request.headers.get("authorization"), token=token):
            # With a token, say how to authenticate; without, there is no way in from there.
            if token:
                return Response("a bearer token is required\n", status_code=401,
                                media_type="text/plain", headers={"WWW-Authenticate": "Bearer"})
            return Response("metrics are served to this machine only\n", status_code=403,
                            media_type="text/plain")
        # Collectors may read the database: not on the event loop.
        body = await run_in_threadpool(exposition, collectors())
        return Response(body, media_type=CONTENT_TYPE_LATEST,
                        headers={"Cache-Control": "no-store"})

    return metrics
