"""The till API as Prometheus and a log collector see it: taps counted by verdict, call
times, /metrics closed to anyone without the token, and no card UID in any log line."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from httpx2 import Response
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.testclient import TestClient

from parent_portal.app import create_app
from school import logs
from school.settings import Settings
from tests.cardpay import test_api
from tests.cardpay.test_api import UID, _tap
from tests.conftest import FakeClock

till = test_api.till  # the till API tests' fixture: a school, a card, a till and its app

TOKEN = "m" * 40
Till = tuple[TestClient, str, Session]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The usual test settings, with a metrics token (the test client is not loopback)."""
    return Settings(environment="test", data_dir=tmp_path / "var", secret_key="t" * 40,
                    database_url=f"sqlite:///{tmp_path / 'moulin.db'}", metrics_token=TOKEN)


def scrape(client: TestClient) -> str:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def value(text: str, metric: str, /, **labels: str) -> float:
    """A sample's value, 0 when absent (a counter not yet incremented)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == metric and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def test_metrics_need_the_token(till: Till) -> None:
    client, device_token, _ = till
    for header in (None, "Bearer wrong", f"Bearer {device_token}", f"Basic {TOKEN}"):
        headers = {"Authorization": header} if header else {"Authorization": ""}
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 401, header
        assert "moulin_" not in response.text
        assert response.headers["www-authenticate"] == "Bearer"


def test_without_a_token_only_this_machine_may_read_them(
    settings: Settings, engine: Engine, clock: FakeClock
) -> None:
    app = create_app(settings.model_copy(update={"metrics_token": ""}), engine, clock=clock)
    response = TestClient(app).get("/metrics", headers={"Authorization": "Bearer anything"})
    assert response.status_code == 403  # the test client's address is "testclient"


def test_taps_are_counted_by_verdict_and_timed(till: Till) -> None:
    client, _, _ = till
    before = scrape(client)
    accepted = {"verdict": "accepted", "reason": "ok", "mode": "online", "repeat": "false"}
    unknown = {"verdict": "refused", "reason": "unknown_card", "mode": "online",
               "repeat": "false"}
    late = {**unknown, "mode": "offline"}
    assert client.post("/api/till/taps", json=_tap()).json()["accepted"] is True
    for _ in range(2):
        assert client.post("/api/till/taps", json=_tap(card={"uid": "0BADCAFE"})).status_code == 200
    # A tap the till decided alone while the server was away, sent later.
    assert client.post("/api/till/taps", json=_tap(card={"uid": "0BADCAFF"},
                                                   offline_accepted=False)).status_code == 200
    assert client.get("/api/till/snapshot").status_code == 200
    after = scrape(client)

    def delta(metric: str, /, **labels: str) -> float:
        return value(after, metric, **labels) - value(before, metric, **labels)

    assert delta("moulin_till_taps_total", **accepted) == 1
    assert delta("moulin_till_taps_total", **unknown) == 2
    assert delta("moulin_till_taps_total", **late) == 1
    assert delta("moulin_till_api_seconds_count", endpoint="/api/till/taps") == 4
    assert delta("moulin_till_api_seconds_count", endpoint="/api/till/snapshot") == 1
    # The till's own call counts too: its token was checked.
    assert value(after, "moulin_device_up", kind="till", name="till-1") == 1
    assert value(after, "process_resident_memory_bytes") > 0


def _two_taps_logged(client: TestClient, capsys: pytest.CaptureFixture[str], level: int,
                     *, sql: bool = False) -> tuple[Response, Response, list[str]]:
    """A paid meal and a refused tap, logged as `logs.configure` sets the server up at
    `level` (with SQLAlchemy's statements too if `sql`): the answers and the lines."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        logs.configure("json", level=level)
        if sql:
            logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)
        paid = client.post("/api/till/taps", json=_tap(), headers={"X-Request-ID": "tap-1"})
        refused = client.post("/api/till/taps", json=_tap(card={"uid": "0BADCAFE"}))
    finally:
        logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    assert paid.json()["accepted"]
    assert not refused.json()["accepted"]
    return paid, refused, capsys.readouterr().err.splitlines()


def test_a_taps_log_lines_name_its_till_and_request_but_never_the_card(
    till: Till, capsys: pytest.CaptureFixture[str]
) -> None:
    client, _, _ = till
    # Everything, SQL statements included.
    _, _, lines = _two_taps_logged(client, capsys, logging.DEBUG, sql=True)
    entries = [json.loads(line) for line in lines]
    taps = [e for e in entries if e["logger"] == "cardpay.metrics"]
    assert [e["message"].split(": ", 1)[1] for e in taps] == [
        "accepted (ok), online", "refused (unknown_card), online"]
    assert taps[0]["request_id"] == "tap-1"
    assert taps[0]["device"].startswith("till:")
    assert any(e["logger"].startswith("sqlalchemy") for e in entries)  # the SQL was logged
    for line in lines:
        for uid in (UID, UID.lower(), "0BADCAFE", "0badcafe"):
            assert uid not in line, line


def test_at_the_default_level_refusals_are_logged_and_paid_meals_are_not(
    till: Till, capsys: pytest.CaptureFixture[str]
) -> None:
    client, _, _ = till
    _, _, lines = _two_taps_logged(client, capsys, logging.INFO)  # as the server runs
    entries = [json.loads(line) for line in lines]
    taps = [e["message"].split(": ", 1)[1] for e in entries if e["logger"] == "cardpay.metrics"]
    assert taps == ["refused (unknown_card), online"]
