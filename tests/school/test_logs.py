"""Log lines as an operator's collector reads them: one JSON object a line with the
context of the work, plain text for people, and no secret in either."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from school import logs


def json_logs(capsys: pytest.CaptureFixture[str]) -> Callable[[], list[str]]:
    """Configure JSON logs the way the commands do; read the lines written since."""
    logs.configure("json")  # here, not in a fixture: stderr is the test call's own
    return lambda: capsys.readouterr().err.splitlines()


def test_json_lines_carry_time_level_logger_message_and_context(
    capsys: pytest.CaptureFixture[str],
) -> None:
    captured = json_logs(capsys)
    logs.set_process_fields(device="reader:ACS ACR122U")
    log = logging.getLogger("cardpay.test")
    with logs.log_context(request_id="r-1", camera=3):
        log.warning("camera %s is %s", 3, "offline")
    log.info("outside")
    first, second = (json.loads(line) for line in captured())
    assert first["level"] == "WARNING"
    assert first["logger"] == "cardpay.test"
    assert first["message"] == "camera 3 is offline"
    assert first["time"].endswith("+00:00")
    assert (first["request_id"], first["camera"]) == ("r-1", 3)
    assert first["device"] == "reader:ACS ACR122U"
    assert "request_id" not in second
    assert "camera" not in second
    assert second["device"] == "reader:ACS ACR122U"


def test_a_traceback_stays_inside_its_json_line(capsys: pytest.CaptureFixture[str]) -> None:
    captured = json_logs(capsys)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("x").exception("failed")
    lines = captured()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["message"] == "failed"
    assert "RuntimeError: boom" in entry["exception"]


def test_stream_tokens_and_bearer_tokens_are_redacted(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # As `moulin serve` leaves uvicorn's access log: through the root logger (a server
    # started by an earlier test may have given it handlers of its own).
    for logger_name in ("uvicorn", "uvicorn.access"):
        logger = logging.getLogger(logger_name)
        for name, value in (("handlers", []), ("propagate", True), ("disabled", False),
                            ("level", logging.NOTSET)):
            monkeypatch.setattr(logger, name, value)
    captured = json_logs(capsys)
    secret = "eyJ1IjozfQ.c2lnbmF0dXJl"
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "10.0.0.9:5000", "GET",
        f"/cameras/1/stream.mjpg?t={secret}&lang=fr", "1.1", 200)
    logging.getLogger("x").info("sent Authorization: Bearer %s", secret)
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "10.0.0.9:5000", "POST", f"/login/reset/{secret}", "1.1",
        303)
    lines = captured()
    assert len(lines) == 3
    for line in lines:
        assert secret not in line
    assert "/cameras/1/stream.mjpg?t=[redacted]&lang=fr" in json.loads(lines[0])["message"]


def test_text_lines_for_people() -> None:
    formatter = logs.TextFormatter()
    record = logging.LogRecord("cardpay.api", logging.INFO, __file__, 1, "tap %s: accepted",
                               ("abc",), None)
    record.moulin_context = {"request_id": "r-2", "device": "till:3"}
    line = formatter.format(record)
    assert line.endswith("INFO cardpay.api: tap abc: accepted [request_id=r-2 device=till:3]")


def test_each_request_gets_an_id_in_its_logs_and_its_response(
    capsys: pytest.CaptureFixture[str],
) -> None:
    captured = json_logs(capsys)
    app = FastAPI()
    app.add_middleware(logs.RequestIds)

    @app.get("/work")
    def work() -> dict[str, str]:  # a sync endpoint: runs in the threadpool
        logging.getLogger("portal").info("working")
        return {}

    client = TestClient(app)
    given = client.get("/work", headers={"X-Request-ID": "proxy-42"})
    assert given.headers["x-request-id"] == "proxy-42"
    fresh = client.get("/work", headers={"X-Request-ID": "bad id\" with spaces"})
    assert len(fresh.headers["x-request-id"]) == 32
    entries = [json.loads(line) for line in captured()]
    ids = [entry.get("request_id") for entry in entries if entry["logger"] == "portal"]
    assert ids == ["proxy-42", fresh.headers["x-request-id"]]


@pytest.mark.parametrize(("line", "secret"), [
    ("camera http://10.0.0.9/video.cgi?user=admin&pwd=s3cret&res=hd offline", "s3cret"),
    ("camera http://10.0.0.9/video.cgi?user=admin&pwd=s3cret&res=hd offline", "admin"),
    ("camera rtsp://admin:s3cret@10.0.0.9:554/live offline", "s3cret"),
    ("refused a form without a valid token on /login/reset/AbC_dEf-12345", "AbC_dEf-12345"),
    ('10.0.0.9:5000 - "GET /welcome/12.1.1797000000.mAc_x HTTP/1.1" 200', "mAc_x"),
    ('10.0.0.9:5000 - "POST /login/reset/tok3n?next=/ HTTP/1.1" 303', "tok3n"),
])
def test_one_routine_redacts_urls_queries_and_paths(
    capsys: pytest.CaptureFixture[str], line: str, secret: str
) -> None:
    assert secret not in logs.redact(line)
    captured = json_logs(capsys)
    logging.getLogger("x").info("%s", line)
    logging.getLogger("x").info("text: " + line.replace("%", "%%"))
    (first, second) = captured()
    assert secret not in first
    assert secret not in second
    assert "[redacted]" in json.loads(first)["message"]
    assert logs.redact("GET /staff/classes/3?first=2026-11-01") == \
        "GET /staff/classes/3?first=2026-11-01"
