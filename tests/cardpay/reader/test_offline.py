"""Offline decisions from the cached snapshot and the journal, without server or reader."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cardpay.reader import offline
from cardpay.reader.journal import KnownTap
from cardpay.rules import CanteenRules
from cardpay.snapshot import rules_json

NOON = datetime(2026, 11, 24, 11, 0, tzinfo=UTC)  # a Tuesday, 12:00 in Paris
UID = "04A1B2C3D4E5F6"


def snapshot_data(**pupil: Any) -> dict[str, Any]:
    rules = CanteenRules(offline_allowance_cents=700, default_price_cents=350)
    return {
        "generated_at": (NOON - timedelta(minutes=5)).isoformat(),
        "school": {"timezone": "Europe/Paris", "currency": "EUR", "locale": "en"},
        "rules": rules_json(rules),
        "retap_window_seconds": 10.0,
        "cards": [
            {"uid": UID, "kind": "ntag424", "status": "active", "pupil_id": 7},
            {"uid": "A1B2C3D4", "kind": "uid", "status": "lost", "pupil_id": 7},
        ],
        "pupils": [
            {
                "id": 7,
                "name": "Léa Martin",
                "classroom": "CP",
                "allergies": "arachide",
                "diet_notes": "",
                "tariff_band": "",
                "balance_cents": 1000,
                "floor_cents": 0,
                "daily_limit_cents": None,
                "spent_today_cents": 0,
                "first_meal_today_at": None,
                "offline_allowance_cents": 700,
                **pupil,
            }
        ],
    }


def snap(**pupil: Any) -> offline.Snapshot:
    return offline.Snapshot(snapshot_data(**pupil), fetched_at=NOON - timedelta(minutes=5))


def earlier(
    minutes: float, *, accepted: bool = True, sent: bool = False, price: int = 350
) -> KnownTap:
    at = NOON - timedelta(minutes=minutes)
    verdict = {"accepted": accepted, "price_cents": price, "pupil": {"id": 7}, "repeat": False}
    return KnownTap(
        read_at=at,
        card={"uid": UID},
        offline_verdict=None if sent else {**verdict, "decided_offline": True},
        server_verdict=verdict if sent else None,
        sent_at=NOON - timedelta(minutes=1) if sent else None,
    )


def test_rules_survive_the_trip_through_json() -> None:
    rules = CanteenRules(prices_by_band={"T1": 80}, closed_days=frozenset({NOON.date()}))
    assert offline.rules_from_json(rules_json(rules)) == rules


def test_a_known_card_with_money_is_accepted_offline_with_the_pupil_shown() -> None:
    verdict = offline.decide(snap(), {"uid": UID.lower()}, NOON, [])
    assert (verdict["accepted"], verdict["reason"], verdict["price_cents"]) == (True, "ok", 350)
    assert verdict["decided_offline"] is True
    assert verdict["balance_cents"] == 650
    assert verdict["pupil"]["allergies"] == "arachide"
    assert verdict["message"] == "Enjoy your meal"


def test_taps_the_snapshot_has_not_counted_lower_the_balance() -> None:
    known = [earlier(60 * 24, sent=True)]  # yesterday, sent after the snapshot was taken
    verdict = offline.decide(snap(balance_cents=600), {"uid": UID}, NOON, known)
    assert (verdict["accepted"], verdict["reason"]) == (False, "insufficient_funds")


def test_one_meal_a_day_holds_offline_too() -> None:
    verdict = offline.decide(snap(), {"uid": UID}, NOON, [earlier(30)])
    assert (verdict["accepted"], verdict["reason"]) == (False, "already_eaten")


def test_the_offline_allowance_caps_what_is_spent_before_the_server_knows() -> None:
    data = snapshot_data(balance_cents=5000)
    data["rules"]["one_meal_per_day"] = False
    snapshot = offline.Snapshot(data, NOON - timedelta(minutes=5))
    one = offline.decide(snapshot, {"uid": UID}, NOON, [earlier(30)])
    assert one["accepted"] is True  # 350 + 350 <= 700
    two = offline.decide(snapshot, {"uid": UID}, NOON, [earlier(30), earlier(20)])
    assert (two["accepted"], two["reason"]) == (False, "offline_allowance")


def test_a_retap_within_seconds_repeats_the_verdict_and_counts_nothing() -> None:
    first = earlier(5 / 60)
    verdict = offline.decide(snap(), {"uid": UID}, NOON, [first])
    assert (verdict["accepted"], verdict["repeat"]) == (True, True)


def test_yesterdays_snapshot_forgets_yesterdays_meal() -> None:
    data = snapshot_data(spent_today_cents=350, first_meal_today_at=NOON.isoformat())
    data["generated_at"] = (NOON - timedelta(days=1)).isoformat()
    snapshot = offline.Snapshot(data, NOON - timedelta(days=1))
    assert offline.decide(snapshot, {"uid": UID}, NOON, [])["accepted"] is True


def test_a_lost_card_an_unknown_card_and_no_snapshot_are_refused() -> None:
    lost = offline.decide(snap(), {"uid": "A1B2C3D4"}, NOON, [])
    assert (lost["accepted"], lost["reason"]) == (False, "card_lost")
    assert lost["alert"]
    unknown = offline.decide(snap(), {"uid": "DEADBEEF"}, NOON, [])
    assert (unknown["reason"], unknown["pupil"]) == ("unknown_card", None)
    assert offline.decide(None, {"uid": UID}, NOON, [])["reason"] == "unknown_card"


def test_the_snapshot_is_kept_on_disk_and_a_broken_file_is_set_aside(tmp_path: Path) -> None:
    store = offline.SnapshotStore(tmp_path / "snapshot.json")
    assert store.load() is None
    store.save(snap())
    loaded = store.load()
    assert loaded is not None
    assert loaded.cards.keys() == {UID, "A1B2C3D4"}
    store.path.write_text('{"snapshot": ')
    assert store.load() is None
    assert (tmp_path / "snapshot.json.unreadable").exists()


def test_a_snapshot_missing_its_parts_is_refused() -> None:
    with pytest.raises(KeyError):
        offline.Snapshot({"school": {}}, NOON)
