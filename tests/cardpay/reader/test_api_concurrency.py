"""A till's requests arriving together (its first tap and its snapshot fetch, as when
the daemon starts) must all be answered: none may trip over the 'last seen' stamp."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.cardpay.reader.stack import Canteen, LiveServer


def test_simultaneous_first_requests_of_a_till_all_succeed(
    canteen: Canteen, server: LiveServer
) -> None:
    def fetch(_: int) -> int:
        response = httpx.get(
            f"{server.url}/api/till/snapshot",
            headers={"Authorization": f"Bearer {canteen.token}"},
            timeout=20,
        )
        return response.status_code

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(fetch, range(16))) == [200] * 16
