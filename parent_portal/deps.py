"""FastAPI dependencies, named once as type aliases so that routes stay a few lines."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Annotated, cast
from zoneinfo import ZoneInfo

from fastapi import Depends, Request
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from parent_portal.errors import LoginRequired
from parent_portal.sessions import SESSION_COOKIE, live_session
from school.clock import Clock
from school.db import immediate_session
from school.models import School, User, WebSession
from school.settings import Settings


@dataclass(frozen=True)
class SignedIn:
    web_session: WebSession
    user: User


def get_settings(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


def get_clock(request: Request) -> Clock:
    return cast(Clock, request.app.state.clock)


def get_db(request: Request) -> Iterator[Session]:
    # Records stay readable after a commit (an audit event written just before an error
    # page), because error pages are rendered after this session has closed.
    engine = cast(Engine, request.app.state.engine)
    with Session(engine, expire_on_commit=False) as session:
        yield session


def get_ledger_db(request: Request) -> Iterator[Session]:
    """A session for money writes: BEGIN IMMEDIATE on SQLite (see cardpay.ledger). Use it
    only after every write of the request's other session, which it would block."""
    engine = cast(Engine, request.app.state.engine)
    with immediate_session(engine) as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
ClockDep = Annotated[Clock, Depends(get_clock)]
SessionDep = Annotated[Session, Depends(get_db)]
LedgerSessionDep = Annotated[Session, Depends(get_ledger_db)]


def signed_in_for(request: Request, session: Session) -> SignedIn | None:
    """The request's live session and user, looked up once per request and kept on
    request.state so that templates and error pages can show who is signed in."""
    if hasattr(request.state, "signed_in"):
        return cast(SignedIn | None, request.state.signed_in)
    found = live_session(
        session=session,
        token=request.cookies.get(SESSION_COOKIE, ""),
        now=get_clock(request)(),
        settings=get_settings(request),
    )
    signed_in = SignedIn(*found) if found else None
    request.state.signed_in = signed_in
    request.state.user = signed_in.user if signed_in else None
    return signed_in


def get_signed_in(request: Request, session: SessionDep) -> SignedIn | None:
    return signed_in_for(request, session)


SignedInDep = Annotated[SignedIn | None, Depends(get_signed_in)]


def get_optional_user(signed_in: SignedInDep) -> User | None:
    return signed_in.user if signed_in else None


def get_current_user(request: Request, signed_in: SignedInDep) -> User:
    if signed_in is None:
        target = request.url.path
        if request.url.query:
            target += "?" + request.url.query
        raise LoginRequired(target)
    return signed_in.user


OptionalUser = Annotated[User | None, Depends(get_optional_user)]
CurrentUser = Annotated[User, Depends(get_current_user)]


def get_today(session: SessionDep, settings: SettingsDep, clock: ClockDep) -> date:
    """Today's date where the school is, which is what guardianships and menus mean by
    'today' (a UTC date would be wrong between midnight and 1 or 2 a.m. in Paris)."""
    zone = session.exec(select(School.timezone).order_by(col(School.id))).first()
    return clock().astimezone(ZoneInfo(zone or settings.default_timezone)).date()


TodayDep = Annotated[date, Depends(get_today)]
