"""The one change the database allows to a card's UID (migration 0007_gdpr): a lost or
retired card's UID erased once to a '~' value, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from tests.cardpay.test_db_rules import Params, _card, _run, _scalar, ids  # noqa: F401

ERASED = "~0123456789abcdef012"


@pytest.mark.parametrize("status", ["retired", "lost"])
def test_a_final_cards_uid_may_be_erased_once(any_engine: Engine, ids: Params,  # noqa: F811
                                              status: str) -> None:
    with any_engine.begin() as conn:
        _card(conn, ids, "04112233", status)
        _run(conn, "UPDATE card SET uid = :u", u=ERASED)
    assert _scalar(any_engine, "SELECT uid FROM card") == ERASED
    with pytest.raises(IntegrityError), any_engine.begin() as conn:
        _run(conn, "UPDATE card SET uid = '~ffffffffffffffffff'")
    assert _scalar(any_engine, "SELECT uid FROM card") == ERASED


@pytest.mark.parametrize(("status", "uid"), [
    ("active", ERASED),  # a card in use keeps its UID
    ("blocked", ERASED),
    ("retired", "04AABBCC"),  # erased means '~', never another card's UID
])
def test_other_uid_changes_are_still_refused(any_engine: Engine, ids: Params,  # noqa: F811
                                             status: str, uid: str) -> None:
    with any_engine.begin() as conn:
        _card(conn, ids, "04112233", status)
    with pytest.raises(IntegrityError), any_engine.begin() as conn:
        _run(conn, "UPDATE card SET uid = :u", u=uid)
    assert _scalar(any_engine, "SELECT uid FROM card") == "04112233"
