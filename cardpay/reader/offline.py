"""Deciding a tap without the server: the cached snapshot, kept on disk, and the rules.

The snapshot (`GET /api/till/snapshot`) holds cards, balances and who has eaten today as
the server saw them when it was fetched. What this till did since then is in its journal:
every tap the server may not have counted yet lowers the pupil's balance here, and taps
accepted offline are held to the pupil's offline allowance until the server has them.
An NTAG 424 DNA card is known offline by its UID only: its SUN is checked on replay.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from cardpay.reader.journal import KnownTap
from cardpay.rules import CanteenRules, Decision, PupilState, Reason, decide_offline, school_day
from cardpay.statuses import CardStatus

logger = logging.getLogger(__name__)

DEFAULT_RETAP_WINDOW = timedelta(seconds=10)
_ALERTS = {
    Reason.CARD_LOST: "a card reported lost was presented",
    Reason.CARD_BLOCKED: "a blocked card was presented",
}


def rules_from_json(data: dict[str, Any]) -> CanteenRules:
    """The inverse of `cardpay.snapshot.rules_json`."""
    return CanteenRules(
        timezone=str(data["timezone"]),
        prices_by_band={str(k): int(v) for k, v in data["prices_by_band"].items()},
        default_price_cents=int(data["default_price_cents"]),
        overdraft_floor_cents=int(data["overdraft_floor_cents"]),
        open_weekdays=frozenset(int(d) for d in data["open_weekdays"]),
        closed_days=frozenset(date.fromisoformat(d) for d in data["closed_days"]),
        service_start=time.fromisoformat(data["service_start"]),
        service_end=time.fromisoformat(data["service_end"]),
        one_meal_per_day=bool(data["one_meal_per_day"]),
        offline_allowance_cents=int(data["offline_allowance_cents"]),
    )


class Snapshot:
    """A parsed snapshot; `fetched_at` is this till's clock when it asked for it.
    Raises KeyError, TypeError or ValueError for a snapshot it cannot make sense of."""

    def __init__(self, data: dict[str, Any], fetched_at: datetime) -> None:
        self.data, self.fetched_at = data, fetched_at
        school = data["school"]
        self.rules = rules_from_json(data["rules"])
        self.locale = str(school.get("locale") or "fr")
        self.currency = str(school.get("currency") or "EUR")
        self.cards: dict[str, dict[str, Any]] = {str(c["uid"]).upper(): c for c in data["cards"]}
        self.pupils: dict[int, dict[str, Any]] = {int(p["id"]): p for p in data["pupils"]}
        self.generated_at  # noqa: B018 - checked now rather than at the first offline tap

    @property
    def generated_at(self) -> datetime:
        return datetime.fromisoformat(self.data["generated_at"])

    @property
    def retap_window(self) -> timedelta:
        seconds = self.data.get("retap_window_seconds")
        return DEFAULT_RETAP_WINDOW if seconds is None else timedelta(seconds=float(seconds))


class SnapshotStore:
    """The last snapshot on disk, replaced atomically, so a till restarted offline still
    decides. A file that cannot be read is moved aside and reported."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> Snapshot | None:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            return Snapshot(raw["snapshot"], datetime.fromisoformat(raw["fetched_at"]))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            aside = self.path.with_name(self.path.name + ".unreadable")
            logger.error("snapshot %s cannot be read (%s): moved to %s", self.path, exc, aside)
            self.path.replace(aside)
            return None

    def save(self, snapshot: Snapshot) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = json.dumps(
            {"fetched_at": snapshot.fetched_at.isoformat(), "snapshot": snapshot.data}
        )
        temporary = self.path.with_name(self.path.name + ".tmp")
        with temporary.open("w", encoding="utf-8") as fh:
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        temporary.replace(self.path)
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def _pupil_of(verdict: dict[str, Any]) -> int | None:
    pupil = verdict.get("pupil")
    return int(pupil["id"]) if isinstance(pupil, dict) and "id" in pupil else None


def _meal(tap: KnownTap) -> bool:
    """True when the tap served a meal as far as this till knows (a repeat serves none)."""
    verdict = tap.verdict
    return bool(verdict and verdict.get("accepted") and not verdict.get("repeat"))


def _charged(tap: KnownTap) -> int:
    verdict = tap.verdict
    return int(verdict.get("price_cents") or 0) if verdict and _meal(tap) else 0


def verdict_json(
    decision: Decision, snapshot: Snapshot | None, pupil: dict[str, Any] | None, **extra: Any
) -> dict[str, Any]:
    """An offline verdict in the server's shape, for the journal and the logs."""
    rules = snapshot.rules if snapshot else CanteenRules()
    locale = snapshot.locale if snapshot else "fr"
    return {
        "accepted": decision.accepted,
        "reason": decision.reason.value,
        "message": decision.message(locale, rules.timezone),
        "price_cents": decision.price_cents,
        "balance_cents": extra.pop("balance_cents", None),
        "currency": snapshot.currency if snapshot else "EUR",
        "pupil": None if pupil is None else _pupil_card(pupil),
        "decided_offline": True,
        "repeat": False,
        "alert": _ALERTS.get(decision.reason, ""),
        **extra,
    }


def _pupil_card(pupil: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "name", "classroom", "allergies", "diet_notes")
    return {**{k: pupil.get(k) for k in keys}, "photo_url": None}


def retap_of(uid: str, at: datetime, window: timedelta, known: list[KnownTap]) -> KnownTap | None:
    """The latest earlier tap of the same card within the re-tap window, with a verdict."""
    for tap in reversed(known):
        same = str(tap.card.get("uid", "")).upper() == uid
        if same and at - window < tap.read_at <= at and tap.verdict is not None:
            return tap
    return None


def decide(
    snapshot: Snapshot | None, card: dict[str, Any], at: datetime, known: list[KnownTap]
) -> dict[str, Any]:
    """The offline verdict for a tap of `card` at `at`, given the journal's `known` taps
    (see `Journal.known_taps`: read within the re-tap window, or not yet counted by the
    snapshot)."""
    uid = str(card["uid"]).upper()
    window = snapshot.retap_window if snapshot else DEFAULT_RETAP_WINDOW
    first = retap_of(uid, at, window, known)
    if first is not None and first.verdict is not None:
        return {**first.verdict, "decided_offline": True, "repeat": True}
    entry = snapshot.cards.get(uid) if snapshot else None
    pupil = snapshot.pupils.get(int(entry["pupil_id"])) if snapshot and entry else None
    if snapshot is None or entry is None or pupil is None:
        if snapshot is None:
            logger.warning("no snapshot yet: an offline tap cannot be matched to a pupil")
        return verdict_json(Decision(accepted=False, reason=Reason.UNKNOWN_CARD), snapshot, None)
    state, spent_offline = _pupil_state(snapshot, entry, pupil, at, known)
    decision = decide_offline(
        snapshot.rules,
        state,
        at,
        spent_offline_cents=spent_offline,
        allowance_cents=int(pupil.get("offline_allowance_cents") or 0),
    )
    balance = state.balance_cents - decision.price_cents
    return verdict_json(decision, snapshot, pupil, balance_cents=balance)


def _pupil_state(
    snapshot: Snapshot,
    entry: dict[str, Any],
    pupil: dict[str, Any],
    at: datetime,
    known: list[KnownTap],
) -> tuple[PupilState, int]:
    """The pupil as the snapshot saw them, less what this till did since; and what was
    spent offline and not yet seen by the server."""
    rules, pupil_id = snapshot.rules, int(pupil["id"])
    uncounted = [
        t
        for t in known
        if (t.sent_at is None or t.sent_at > snapshot.fetched_at)
        and t.verdict is not None
        and _pupil_of(t.verdict) == pupil_id
        and _meal(t)
    ]
    today = school_day(rules, at)
    same_day = [t for t in uncounted if school_day(rules, t.read_at) == today]
    fresh = school_day(rules, snapshot.generated_at) == today
    first_meals = [t.read_at for t in same_day]
    if fresh and pupil.get("first_meal_today_at"):
        first_meals.append(datetime.fromisoformat(pupil["first_meal_today_at"]))
    state = PupilState(
        card_status=CardStatus(entry["status"]),
        tariff_band=str(pupil.get("tariff_band") or ""),
        balance_cents=int(pupil["balance_cents"]) - sum(_charged(t) for t in uncounted),
        daily_limit_cents=pupil.get("daily_limit_cents"),
        spent_today_cents=(int(pupil.get("spent_today_cents") or 0) if fresh else 0)
        + sum(_charged(t) for t in same_day),
        first_meal_today_at=min(first_meals) if first_meals else None,
        floor_cents=pupil.get("floor_cents"),
    )
    spent_offline = sum(_charged(t) for t in uncounted if t.sent_at is None and t.offline_verdict)
    return state, spent_offline
