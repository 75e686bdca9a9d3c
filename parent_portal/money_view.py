"""What the money pages share: amounts and times formatted for the reader, the hidden
nonce that makes a form post once, and a pupil's account summary."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from fastapi import Request
from sqlmodel import Session, col, select

from cardpay import history
from cardpay.account_models import LunchSettings
from cardpay.models import Account, Card
from cardpay.money import format_cents
from parent_portal.templating import language_of
from school.errors import InvalidInput
from school.models import Pupil, School
from school.security import new_token

_NONCE = re.compile(r"^[A-Za-z0-9_-]{32,64}$")
HISTORY_LINES = 60


@dataclass(frozen=True)
class Formats:
    """Amounts in the reader's language, times in the school's time zone."""

    lang: str
    currency: str
    timezone: str

    @classmethod
    def of(cls, request: Request, school: School) -> Formats:
        return cls(language_of(request), school.currency, school.timezone)

    def money(self, cents: int) -> str:
        return format_cents(cents, self.lang, self.currency)

    def when(self, at: datetime) -> str:
        local = at.astimezone(ZoneInfo(self.timezone))
        return f"{local:%d/%m/%Y %H:%M}" if self.lang == "fr" else f"{local:%d %b %Y, %H:%M}"

    def day(self, value: date) -> str:
        return f"{value:%d/%m/%Y}" if self.lang == "fr" else f"{value:%d %b %Y}"

    def today(self, now: datetime) -> date:
        return now.astimezone(ZoneInfo(self.timezone)).date()


def new_nonce() -> str:
    return new_token()


def form_client_id(kind: str, user_id: int, nonce: str) -> str:
    """The ledger client id of one form: the same form posted twice posts once, and one
    user cannot replay another's."""
    if not _NONCE.match(nonce):
        raise InvalidInput("the form has no valid nonce")
    return f"{kind}:{user_id}:{nonce}"


@dataclass(frozen=True)
class AccountView:
    account: Account | None
    cards: list[Card]
    lines: list[history.Line]
    settings: LunchSettings | None

    @property
    def balance_cents(self) -> int:
        return self.account.balance_cents if self.account else 0


def account_view(session: Session, pupil: Pupil) -> AccountView:
    """A pupil's balance, cards (newest first) and latest history, read-only: an account
    not opened yet shows as empty rather than being opened by a page view."""
    account = session.exec(select(Account).where(Account.pupil_id == pupil.id)).first()
    cards = list(session.exec(select(Card).where(Card.pupil_id == pupil.id)
                              .order_by(col(Card.created_at).desc(), col(Card.id).desc())))
    found = history.lines(session, account, limit=HISTORY_LINES) if account else []
    return AccountView(account, cards, found, session.get(LunchSettings, pupil.id))
