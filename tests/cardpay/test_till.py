"""The till service: what a cashier and a pupil see for each kind of tap."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from cardpay import cards
from cardpay.accounts import pupil_account, school_account
from cardpay.errors import TapConflictError, TapRejectedError
from cardpay.integrity import check_integrity
from cardpay.ledger import post
from cardpay.models import (
    AccountKind,
    CanteenSettings,
    CardKind,
    LedgerTransaction,
    Tap,
    TransactionKind,
)
from cardpay.sun import Keyring
from cardpay.till import TapRequest, Till
from cardpay.verdicts import verdict_of
from school.devices import add_device
from school.models import AuditEvent, ClosedDay, Device, DeviceKind, Pupil
from tests.cardpay.cardsim import card_tap
from tests.conftest import FakeClock
from tests.factories import SmallSchool

KEYS = Keyring(b"k" * 32)
UID_CLASSIC = "A1B2C3D4"
UID_SECURE = bytes.fromhex("04A1B2C3D4E5F6")
NOON = datetime(2026, 11, 24, 11, 0, tzinfo=UTC)  # a Tuesday, 12:00 in Paris


class Canteen:
    def __init__(self, engine: Engine, session: Session, s: SmallSchool, clock: FakeClock):
        self.engine, self.session, self.s, self.clock = engine, session, s, clock
        self.till = Till(engine=engine, keyring=KEYS, clock=clock)
        self.device, _ = add_device(
            session=session, school=s.school, kind=DeviceKind.TILL, name="till-1"
        )
        session.add(
            CanteenSettings(
                school_id=s.school.id, prices_by_band={"T1": 80}, default_price_cents=350
            )
        )
        self.lea, self.hugo = s.pupils[0], s.pupils[1]
        cards.issue_card(session=session, pupil=self.lea, uid=UID_CLASSIC, kind=CardKind.UID)
        cards.issue_card(session=session, pupil=self.hugo, uid=UID_SECURE, kind=CardKind.NTAG424)
        self.top_up(self.lea, 1000)
        self.top_up(self.hugo, 1000)

    def top_up(self, pupil: Pupil, cents: int) -> None:
        account = pupil_account(session=self.session, pupil=pupil)
        cash = school_account(
            session=self.session, school_id=self.s.school.id or 0, kind=AccountKind.CASH_DRAWER
        )
        post(
            session=self.session,
            school_id=self.s.school.id or 0,
            kind=TransactionKind.TOPUP,
            client_id=str(uuid.uuid4()),
            legs=[(account, cents), (cash, -cents)],
        )

    def tap(
        self,
        uid: str = UID_CLASSIC,
        *,
        tap_id: str | None = None,
        at: datetime | None = None,
        sun: tuple[int, bytes] | None = None,
        offline: bool | None = None,
        device: Device | None = None,
    ):  # type: ignore[no-untyped-def]
        sun_url = None
        if sun is not None:
            counter, secure_uid = sun
            m = card_tap(KEYS.meta_read, KEYS.file_read(secure_uid), secure_uid, counter)
            sun_url = f"https://t.example/c?picc_data={m.picc_data.hex().upper()}&cmac={m.cmac.hex().upper()}"
        request = TapRequest(
            tap_id=tap_id or str(uuid.uuid4()),
            read_at=at or self.clock(),
            uid=uid if sun is None else sun[1].hex(),
            sun_url=sun_url,
            offline_accepted=offline,
        )
        return self.till.tap(device or self.device, request)

    def balance(self, pupil: Pupil) -> int:
        with Session(self.engine) as s:
            return pupil_account(session=s, pupil=s.get(Pupil, pupil.id)).balance_cents  # type: ignore[arg-type]

    def meals(self) -> int:
        with Session(self.engine) as s:
            return int(
                s.exec(
                    select(func.count())
                    .select_from(LedgerTransaction)
                    .where(LedgerTransaction.kind == TransactionKind.MEAL)
                ).one()
            )


@pytest.fixture
def canteen(
    engine: Engine, session: Session, small_school: SmallSchool, clock: FakeClock
) -> Canteen:
    clock.now = NOON
    return Canteen(engine, session, small_school, clock)


def test_an_accepted_tap_charges_the_meal_and_shows_the_pupil(canteen: Canteen) -> None:
    verdict = canteen.tap()
    assert verdict.accepted
    assert (verdict.message, verdict.price_cents, verdict.balance_cents) == (
        "Bon appétit",
        350,
        650,
    )
    assert verdict.pupil is not None
    assert (verdict.pupil.name, verdict.pupil.classroom, verdict.pupil.allergies) == (
        "Léa Martin",
        "CP",
        "arachide",
    )
    assert canteen.balance(canteen.lea) == 650
    with Session(canteen.engine) as s:
        assert check_integrity(s) == []


def test_a_retried_tap_gets_its_first_verdict_and_is_charged_once(canteen: Canteen) -> None:
    first = canteen.tap(tap_id="tap-1")
    again = canteen.tap(tap_id="tap-1")
    assert again == first
    assert canteen.meals() == 1
    assert canteen.balance(canteen.lea) == 650


def _recorded(canteen: Canteen, tap_id: str):  # type: ignore[no-untyped-def]
    """The verdict as the cashier's screen reads it back from the database."""
    with Session(canteen.engine) as s:
        return verdict_of(s, s.exec(select(Tap).where(Tap.tap_id == tap_id)).one())


@pytest.mark.parametrize("kind", ["accepted", "lost card", "unknown card", "re-tap",
                                  "second meal", "re-tap of a second meal"])
def test_a_retry_gets_the_verdict_as_recorded(canteen: Canteen, kind: str) -> None:
    if kind == "lost card":
        with Session(canteen.engine) as s:
            cards.mark_lost(session=s, card=cards.find_by_uid(s, UID_CLASSIC))
            s.commit()
    if kind in ("re-tap", "second meal", "re-tap of a second meal"):
        canteen.tap()
        canteen.clock.advance(seconds=3 if kind == "re-tap" else 1200)
    if kind == "re-tap of a second meal":
        canteen.tap()
        canteen.clock.advance(seconds=3)
    uid = "0102030405060708" if kind == "unknown card" else UID_CLASSIC
    first = canteen.tap(uid, tap_id="tap-1")
    canteen.clock.advance(seconds=30)
    again = canteen.tap(uid, tap_id="tap-1")
    assert again == first == _recorded(canteen, "tap-1")
    assert first.repeat is kind.startswith("re-tap")
    if "second meal" in kind:
        assert first.message == "Déjà servi aujourd'hui à 12:00"


def test_the_same_card_again_within_seconds_repeats_the_verdict(canteen: Canteen) -> None:
    canteen.tap()
    canteen.clock.advance(seconds=4)
    repeat = canteen.tap()
    assert (repeat.accepted, repeat.repeat, repeat.balance_cents) == (True, True, 650)
    assert canteen.meals() == 1


def test_a_second_meal_later_that_day_is_refused_with_the_time_of_the_first(
    canteen: Canteen,
) -> None:
    canteen.tap()
    canteen.clock.advance(minutes=20)
    second = canteen.tap()
    assert (second.accepted, second.reason) == (False, "already_eaten")
    assert second.message == "Déjà servi aujourd'hui à 12:00"
    assert canteen.meals() == 1


def test_not_enough_money_is_refused_and_nothing_is_posted(canteen: Canteen) -> None:
    with Session(canteen.engine) as s:
        s.exec(select(CanteenSettings)).one().default_price_cents = 1500
        s.commit()
    verdict = canteen.tap()
    assert (verdict.accepted, verdict.reason, verdict.message) == (
        False,
        "insufficient_funds",
        "Solde insuffisant",
    )
    assert canteen.meals() == 0
    assert canteen.balance(canteen.lea) == 1000


@pytest.mark.parametrize(
    ("change", "reason", "alert"),
    [
        (cards.mark_lost, "card_lost", "a card reported lost was presented"),
        (cards.block, "card_blocked", "a blocked card was presented"),
    ],
)
def test_lost_or_blocked_cards_are_refused_with_an_alert(
    canteen: Canteen,
    change,
    reason: str,
    alert: str,  # type: ignore[no-untyped-def]
) -> None:
    with Session(canteen.engine) as s:
        change(session=s, card=cards.find_by_uid(s, UID_CLASSIC))
        s.commit()
    verdict = canteen.tap()
    assert (verdict.accepted, verdict.reason, verdict.alert) == (False, reason, alert)
    assert canteen.meals() == 0
    with Session(canteen.engine) as s:
        assert s.exec(select(AuditEvent.action).where(AuditEvent.action == "tap.alert")).all()


def test_an_unknown_card_is_refused(canteen: Canteen) -> None:
    verdict = canteen.tap("DEADBEEF")
    assert (verdict.accepted, verdict.reason, verdict.pupil) == (False, "unknown_card", None)


def test_a_secure_card_is_accepted_once_and_its_replay_refused(canteen: Canteen) -> None:
    ok = canteen.tap(sun=(5, UID_SECURE))
    assert ok.accepted
    assert ok.pupil is not None
    assert ok.pupil.name == "Hugo Bernard"
    canteen.clock.advance(minutes=1)
    replay = canteen.tap(sun=(5, UID_SECURE))
    assert (replay.accepted, replay.reason) == (False, "replayed")
    assert "replayed" in replay.alert
    assert canteen.meals() == 1


def test_a_forged_secure_card_and_a_uid_only_read_of_it_are_refused(canteen: Canteen) -> None:
    forged = TapRequest(
        tap_id="f",
        read_at=NOON,
        uid=UID_SECURE.hex(),
        sun_url="https://t/c?picc_data=" + "00" * 16 + "&cmac=" + "00" * 8,
    )
    verdict = canteen.till.tap(canteen.device, forged)
    assert (verdict.accepted, verdict.reason) == (False, "card_not_genuine")
    copy = canteen.tap(UID_SECURE.hex())
    assert (copy.accepted, copy.reason) == (False, "card_not_genuine")
    assert canteen.meals() == 0


def test_an_offline_meal_is_charged_once_even_below_the_floor(canteen: Canteen) -> None:
    canteen.tap()  # 6.50 left
    canteen.clock.advance(days=1)
    days = (-7, -6, -1)  # a Tuesday, a Wednesday (no canteen, yet a meal was served), Monday
    late = [canteen.tap(tap_id=f"off-{d}", at=NOON + timedelta(days=d), offline=True) for d in days]
    assert all(v.accepted and v.decided_offline for v in late)
    assert canteen.tap(tap_id="off--1", at=NOON - timedelta(days=1), offline=True) == late[2]
    assert canteen.balance(canteen.lea) == 1000 - 4 * 350
    assert [v.alert for v in late] == [
        "",
        "served offline although: Canteen closed today",
        "served offline although: Not enough money on the account",
    ]
    assert canteen.meals() == 4


def test_an_offline_refusal_charges_nothing(canteen: Canteen) -> None:
    verdict = canteen.tap(offline=False)
    assert not verdict.accepted
    assert canteen.meals() == 0


def test_closed_days_and_service_hours(canteen: Canteen) -> None:
    with Session(canteen.engine) as s:
        s.add(ClosedDay(school_id=canteen.s.school.id, day=date(2026, 11, 24), label="grève"))
        s.commit()
    assert canteen.tap().message == "Cantine fermée aujourd'hui"
    canteen.clock.advance(days=2, hours=7)  # Thursday, 19:00 in Paris
    assert canteen.tap().message == "En dehors des heures de service"
    assert canteen.meals() == 0


def _paris(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=ZoneInfo("Europe/Paris")).astimezone(UTC)


@pytest.mark.parametrize("years", [-1, 1])
def test_a_school_day_a_year_from_the_real_date(canteen: Canteen, years: int) -> None:
    """The only test that reads the real date, on purpose: a school day a year behind and
    a year ahead of whenever it runs gives the same verdicts, so no rule reads the wall
    clock instead of the till's."""
    real = date.today()
    start = real + timedelta(days=365 * years)
    tuesday = start + timedelta(days=(1 - start.weekday()) % 7)
    with Session(canteen.engine) as s:
        s.add(ClosedDay(school_id=canteen.s.school.id, day=tuesday, label="grève"))
        s.commit()
    canteen.clock.now = _paris(tuesday, 12)
    assert canteen.tap().message == "Cantine fermée aujourd'hui"
    canteen.clock.now = _paris(tuesday + timedelta(days=2), 19)  # Thursday evening
    assert canteen.tap().message == "En dehors des heures de service"
    canteen.clock.now = _paris(tuesday + timedelta(days=3), 12)  # Friday lunch
    verdict = canteen.tap()
    assert (verdict.accepted, verdict.balance_cents) == (True, 650)
    assert canteen.meals() == 1


def test_a_tap_id_from_another_till_is_a_conflict(canteen: Canteen) -> None:
    other, _ = add_device(
        session=canteen.session, school=canteen.s.school, kind=DeviceKind.TILL, name="till-2"
    )
    canteen.session.commit()
    canteen.tap(tap_id="shared")
    with pytest.raises(TapConflictError):
        canteen.tap(tap_id="shared", device=other)


@pytest.mark.parametrize("at", [NOON + timedelta(minutes=5), NOON - timedelta(days=30)])
def test_impossible_times_are_rejected(canteen: Canteen, at: datetime) -> None:
    with pytest.raises(TapRejectedError):
        canteen.tap(at=at)
    with Session(canteen.engine) as s:
        assert s.exec(select(Tap)).all() == []


def test_the_parents_daily_limit_is_enforced_at_the_till(canteen: Canteen) -> None:
    from cardpay.account_models import LunchSettings

    with Session(canteen.engine) as s:
        s.add(LunchSettings(pupil_id=canteen.lea.id, daily_limit_cents=300))
        s.commit()
    verdict = canteen.tap()
    assert (verdict.accepted, verdict.reason) == (False, "daily_limit")
    assert canteen.meals() == 0


def test_a_meal_that_crosses_the_alert_threshold_queues_one_email_per_guardian(
    canteen: Canteen,
) -> None:
    from cardpay.account_models import LowBalanceAlert, OutboxEmail

    canteen.tap()  # 10.00 → 6.50: above the default threshold of 5.00
    with Session(canteen.engine) as s:
        assert s.exec(select(LowBalanceAlert)).all() == []
    canteen.clock.advance(days=2)  # Thursday
    assert canteen.tap().balance_cents == 300
    with Session(canteen.engine) as s:
        assert len(s.exec(select(LowBalanceAlert)).all()) == 1
        assert [e.to_address for e in s.exec(select(OutboxEmail))] == ["parent@example.org"]
