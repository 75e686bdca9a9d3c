"""The daemon on the real stack: virtual card → vpcd → pcscd → pyscard → the daemon →
HTTP → the app → the ledger, and the LED and buzzer commands back on the card."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from firmware_mocks.cards import Fault, Kind
from firmware_mocks.vpcd_card import VirtualCard
from school.models import Role, School
from school.people import grant_role
from tests import factories
from tests.cardpay.reader.conftest import RunningDaemon
from tests.cardpay.reader.stack import (
    PRICE,
    Canteen,
    LiveServer,
    balance,
    meals_charged,
    read_events,
    signed_in_http,
    taps,
)
from tests.hardware.pcscd import Pcscd

HOLD = 8000  # ms; the card leaves as soon as the reader has shown the verdict


def test_an_ntag424_tap_is_accepted_charged_once_and_shown_green(
    pcscd: Pcscd,
    canteen: Canteen,
    server: LiveServer,
    engine: Engine,
    start_daemon: Callable[..., RunningDaemon],
) -> None:
    start_daemon(server.url, canteen.token)
    holder = canteen.holders[0]
    card = canteen.card(holder, pcscd.port)
    pcscd.wait_until_empty()
    card.tap(HOLD, until_feedback=True)
    [seen] = card.feedback
    assert (seen.green, seen.red, seen.beeps) == (True, False, 1)
    [tap] = taps(engine)
    assert (tap.accepted, tap.reason, tap.sun_verified) == (True, "ok", True)
    assert meals_charged(engine, holder.pupil_id) == 1
    assert balance(engine, holder.pupil_id) == 2000 - PRICE


def test_an_unknown_card_is_refused_red_with_two_beeps(
    pcscd: Pcscd,
    canteen: Canteen,
    server: LiveServer,
    engine: Engine,
    start_daemon: Callable[..., RunningDaemon],
) -> None:
    start_daemon(server.url, canteen.token)
    stranger = VirtualCard(Kind.MIFARE_CLASSIC_1K, bytes.fromhex("DEADBEEF"), port=pcscd.port)
    pcscd.wait_until_empty()
    stranger.tap(HOLD, until_feedback=True)
    [seen] = stranger.feedback
    assert (seen.green, seen.red, seen.beeps) == (False, True, 2)
    [tap] = taps(engine)
    assert (tap.accepted, tap.reason, tap.card_uid) == (False, "unknown_card", "DEADBEEF")


def test_a_card_held_is_one_tap_and_a_quick_retap_repeats_the_verdict_without_charge(
    pcscd: Pcscd,
    canteen: Canteen,
    server: LiveServer,
    engine: Engine,
    start_daemon: Callable[..., RunningDaemon],
) -> None:
    start_daemon(server.url, canteen.token)
    holder = canteen.holders[1]  # a Classic card: UID only
    card = canteen.card(holder, pcscd.port)
    pcscd.wait_until_empty()
    card.tap(2500)  # left on the reader long after the beep
    pcscd.wait_until_empty()
    card.tap(HOLD, until_feedback=True)  # and tapped again a moment later
    assert [(f.green, f.beeps) for f in card.feedback] == [(True, 1), (True, 1)]
    first, again = taps(engine)
    assert (first.accepted, first.repeat_of_id) == (True, None)
    assert (again.accepted, again.repeat_of_id) == (True, first.id)
    assert meals_charged(engine, holder.pupil_id) == 1


def test_a_card_pulled_away_mid_read_records_nothing_and_the_next_tap_works(
    pcscd: Pcscd,
    canteen: Canteen,
    server: LiveServer,
    engine: Engine,
    start_daemon: Callable[..., RunningDaemon],
    caplog: pytest.LogCaptureFixture,
) -> None:
    running = start_daemon(server.url, canteen.token)
    card = canteen.card(canteen.holders[0], pcscd.port)
    card.inject(Fault("vanish", on=bytes.fromhex("00B0")))  # while reading the SUN file
    pcscd.wait_until_empty()
    assert card.tap(HOLD, until_feedback=True).vanished
    pcscd.wait_until_empty()
    card.tap(HOLD, until_feedback=True)
    assert [(f.green, f.beeps) for f in card.feedback] == [(True, 1)]
    assert [t.accepted for t in taps(engine)] == [True]
    running.wait_for_empty_queue()  # marked sent just after the beep: one tap, no other
    assert running.journal.queue_length() == 0
    assert "card lifted mid-read" in caplog.text


def test_a_reader_sending_garbage_after_the_uid_still_sends_the_tap(
    pcscd: Pcscd,
    canteen: Canteen,
    server: LiveServer,
    engine: Engine,
    start_daemon: Callable[..., RunningDaemon],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Garbage in place of the SUN file, after the UID: the tap still goes to the server
    (as a UID read, which a secure card's is not enough for), and the next one pays."""
    running = start_daemon(server.url, canteen.token)
    card = canteen.card(canteen.holders[0], pcscd.port)
    card.inject(Fault("garbage", on=bytes.fromhex("00B0")))  # the SUN file
    pcscd.wait_until_empty()
    card.tap(HOLD, until_feedback=True)
    assert "sent as a UID card" in caplog.text
    assert running.thread.is_alive()
    pcscd.wait_until_empty()
    card.tap(HOLD, until_feedback=True)
    assert [(f.green, f.beeps) for f in card.feedback] == [(False, 2), (True, 1)]
    assert [(t.accepted, t.reason) for t in taps(engine)] == [
        (False, "card_not_genuine"), (True, "ok")]


def test_a_replayed_ntag424_message_is_refused_and_the_till_screen_shows_the_alert(
    pcscd: Pcscd,
    session: Session,
    canteen: Canteen,
    server: LiveServer,
    engine: Engine,
    start_daemon: Callable[..., RunningDaemon],
) -> None:
    cashier = factories.user(session, "caisse@example.org")
    school = session.get(School, canteen.school_id)
    assert school is not None
    grant_role(session=session, user=cashier, school=school, role=Role.CASHIER)
    session.commit()
    browser = signed_in_http(server.url, "caisse@example.org")
    start_daemon(server.url, canteen.token)
    holder = canteen.holders[0]
    genuine = canteen.card(holder, pcscd.port, counter=10)
    copy = canteen.card(holder, pcscd.port, counter=3)  # replays an older read counter
    with browser.stream("GET", f"/till/{canteen.device.id}/events?after=0") as screen:
        pcscd.wait_until_empty()
        genuine.tap(HOLD, until_feedback=True)
        pcscd.wait_until_empty()
        copy.tap(HOLD, until_feedback=True)
        first, replayed = read_events(screen, 2)
    browser.close()
    assert [(f.green, f.beeps) for f in copy.feedback] == [(False, 2)]
    assert (first["accepted"], replayed["accepted"]) == (True, False)
    assert replayed["reason"] == "replayed"
    assert "replayed" in str(replayed["alert"])
    assert meals_charged(engine, holder.pupil_id) == 1
