"""School settings: the time zone and the canteen rules. Euros typed as text become
integer cents; any bad field refuses the whole form and changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, time
from html import unescape

import pytest
from sqlmodel import Session, select
from starlette.testclient import TestClient

from cardpay import canteen
from cardpay.account_models import SchoolAlertSettings
from cardpay.models import CanteenSettings
from school.models import AuditEvent, School
from tests import factories
from tests.factories import SmallSchool
from tests.parent_portal.admin_pages import audit_rows, page_url
from tests.parent_portal.conftest import csrf_from, signed_in

GOOD: dict[str, str | list[str]] = {
    "timezone": "Europe/Paris",
    "default_price": "4,10",
    "band": ["T1", "T2", "Gratuit", ""],
    "band_price": ["0.80", "2,5", "0", ""],
    "overdraft": "10",
    "offline_allowance": "7 €",
    "low_balance_alert": "6.00",
    "retap_seconds": "15",
    "weekday": ["0", "1", "3", "4"],
    "service_start": "11:15",
    "service_end": "13:45",
    "one_meal_per_day": "1",
}


def settings_url(small: SmallSchool) -> str:
    return page_url(small.school, "settings")


def save(client: TestClient, small: SmallSchool, **changes: str | list[str]) -> object:
    token = csrf_from(client.get(settings_url(small)).text)
    return client.post(settings_url(small), data={"csrf_token": token, **GOOD, **changes})


def stored(session: Session, school_id: int | None) -> CanteenSettings | None:
    session.rollback()
    return session.exec(select(CanteenSettings)
                        .where(CanteenSettings.school_id == school_id)).first()


def test_the_page_shows_the_rules_the_till_uses_by_default(
    client: TestClient, small_school: SmallSchool
) -> None:
    signed_in(client, "admin@example.org")
    page = client.get(settings_url(small_school)).text
    assert 'value="Europe/Paris"' in page
    assert 'id="default_price" name="default_price"' in page
    assert 'value="3.50"' in page  # the default price, 350 cents
    assert 'value="7.00"' in page  # the offline allowance
    assert 'value="11:00"' in page
    assert 'value="14:30"' in page
    assert f'href="/staff/schools/{small_school.school.id}/calendar"' in page


def test_saving_stores_cents_and_is_audited_before_and_after(
    client: TestClient, session: Session, small_school: SmallSchool
) -> None:
    signed_in(client, "admin@example.org")
    response = save(client, small_school, timezone="Europe/Brussels")
    assert response.status_code == 303, unescape(response.text)  # type: ignore[attr-defined]
    school_id = small_school.school.id
    row = stored(session, school_id)
    assert row is not None
    assert row.default_price_cents == 410
    assert row.prices_by_band == {"Gratuit": 0, "T1": 80, "T2": 250}
    assert row.overdraft_floor_cents == -1000
    assert row.offline_allowance_cents == 700
    assert row.retap_window_seconds == 15
    assert row.open_weekdays == "0134"
    assert (row.service_start, row.service_end) == (time(11, 15), time(13, 45))
    assert row.one_meal_per_day is True
    assert session.get(SchoolAlertSettings, school_id).low_balance_alert_cents == 600  # type: ignore[union-attr]
    school = session.get(School, school_id)
    assert school is not None
    assert school.timezone == "Europe/Brussels"
    # What the till decides with, read the way it reads it.
    rules = canteen.rules_for(session, school, now=datetime(2026, 11, 24, 10, tzinfo=UTC))
    assert rules.price_for("Gratuit") == 0
    assert rules.price_for("T2") == 250
    assert rules.price_for("unknown band") == 410
    [tz] = audit_rows(session, "school.timezone")
    assert (tz.detail["before"], tz.detail["after"]) == ("Europe/Paris", "Europe/Brussels")
    assert tz.actor_user_id == small_school.admin.id
    [rules_row] = audit_rows(session, "canteen.settings")
    changes = rules_row.detail["changes"]
    assert changes["default_price_cents"] == [350, 410]
    assert changes["overdraft_floor_cents"] == [0, -1000]
    assert changes["prices_by_band"] == [{}, {"Gratuit": 0, "T1": 80, "T2": 250}]
    assert changes["service_start"] == ["11:00", "11:15"]
    assert "offline_allowance_cents" not in changes  # 7 € before and after
    page = client.get(response.headers["location"]).text  # type: ignore[attr-defined]
    assert "Réglages enregistrés" in unescape(page)
    assert 'value="4.10"' in page


def test_saving_the_same_values_again_writes_no_audit_row(
    client: TestClient, session: Session, small_school: SmallSchool
) -> None:
    signed_in(client, "admin@example.org")
    save(client, small_school)
    save(client, small_school)
    assert len(audit_rows(session, "canteen.settings")) == 1
    assert audit_rows(session, "school.timezone") == []


def test_a_band_left_without_a_price_pays_the_default(
    client: TestClient, session: Session, small_school: SmallSchool
) -> None:
    signed_in(client, "admin@example.org")
    save(client, small_school)
    save(client, small_school, band=["T1", "T2", "Gratuit", ""],
         band_price=["0.80", "", "0", ""])
    row = stored(session, small_school.school.id)
    assert row is not None
    assert row.prices_by_band == {"Gratuit": 0, "T1": 80}


def test_bands_pupils_belong_to_are_listed_even_without_a_price(
    client: TestClient, session: Session, small_school: SmallSchool
) -> None:
    pupil = small_school.pupils[0]
    pupil.tariff_band = "QF3"
    session.add(pupil)
    session.commit()
    signed_in(client, "admin@example.org")
    page = client.get(settings_url(small_school)).text
    assert 'name="band" maxlength="32" autocomplete="off" value="QF3"' in page


@pytest.mark.parametrize(("changes", "message"), [
    ({"default_price": "4.105"}, "Not a valid amount"),
    ({"default_price": "abc"}, "Not a valid amount"),
    ({"default_price": "-1"}, "Not a valid amount"),
    ({"default_price": "1e3"}, "Not a valid amount"),
    ({"default_price": ""}, "Please enter an amount"),
    ({"default_price": "250"}, "too large"),
    ({"overdraft": "1 000"}, "Not a valid amount"),
    ({"band_price": ["0.80", "2,5", "x", ""]}, "Not a valid amount"),
    ({"band": ["T1", "T1", "Gratuit", ""]}, "Band name not valid or repeated"),
    ({"band": ["T1", "T2", "<script>", ""]}, "Band name not valid or repeated"),
    ({"band": ["T1", "T2", "Gratuit", ""], "band_price": ["0.80", "2,5", "0", "3"]},
     "Band name not valid"),
    ({"timezone": "Mars/Olympus"}, "Unknown time zone"),
    ({"timezone": "../../etc/passwd"}, "Unknown time zone"),
    ({"service_end": "11:00"}, "Service must end after it starts"),
    ({"service_start": "25:00"}, "Not a valid time"),
    ({"retap_seconds": "-3"}, "A whole number of seconds"),
    ({"retap_seconds": "9999"}, "A whole number of seconds"),
    ({"weekday": ["0", "9"]}, "Not a valid day"),
])
def test_bad_input_changes_nothing(client: TestClient, session: Session,
                                   small_school: SmallSchool,
                                   changes: dict[str, str | list[str]], message: str) -> None:
    signed_in(client, "admin@example.org")
    response = client.get(f"{settings_url(small_school)}?lang=en")
    token = csrf_from(response.text)
    response = client.post(settings_url(small_school),
                           data={"csrf_token": token, **GOOD, **changes,
                                 "timezone": changes.get("timezone", "Europe/Brussels")})
    assert response.status_code == 400
    text = unescape(response.text)
    assert "Nothing was saved" in text
    assert message in text
    assert 'aria-invalid="true"' in text
    assert stored(session, small_school.school.id) is None
    session.rollback()
    assert session.get(School, small_school.school.id).timezone == "Europe/Paris"  # type: ignore[union-attr]
    assert session.exec(select(AuditEvent).where(
        AuditEvent.action.in_(["canteen.settings", "school.timezone"]))).all() == []  # type: ignore[attr-defined]


def test_another_schools_settings_stay_untouched(client: TestClient, session: Session,
                                                small_school: SmallSchool) -> None:
    other = factories.school(session, "autre", "École du Lac")
    session.commit()
    signed_in(client, "admin@example.org")
    save(client, small_school)
    assert stored(session, other.id) is None
    assert stored(session, small_school.school.id) is not None
