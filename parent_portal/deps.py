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
from parent_portal.sessions import SESSION_COOKIE, live_session, touch
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


UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def get_engine(request: Request) -> Engine:
    return cast(Engine, request.app.state.engine)


def get_db(request: Request) -> Iterator[Session]:
    """The request's database session. A request that may write (an unsafe method) takes
    SQLite's write lock when it first touches the database, so it can never fail midway
    for a till that wrote in between (see school.db.immediate_session); a GET only reads,
    and what little it writes (a session's idle timer, an audit row) goes through a short
    write of its own. Records stay readable after a commit, because error pages are
    rendered after this session has closed."""
    engine = get_engine(request)
    if request.method in UNSAFE_METHODS:
        with immediate_session(engine, expire_on_commit=False) as session:
            yield session
    else:
        with Session(engine, expire_on_commit=False) as session:
            yield session


def get_ledger_db(session: Annotated[Session, Depends(get_db)]) -> Session:
    """The session for money writes. It is the request's own session: a request that may
    write already holds SQLite's write lock from its first statement (see get_db), which
    is what cardpay.ledger asks for; a second session would wait on the first forever."""
    return session


SettingsDep = Annotated[Settings, Depends(get_settings)]
ClockDep = Annotated[Clock, Depends(get_clock)]
SessionDep = Annotated[Session, Depends(get_db)]
LedgerSessionDep = Annotated[Session, Depends(get_ledger_db)]


def signed_in_for(request: Request) -> SignedIn | None:
    """The request's live session and user, looked up once per request (in a read of its
    own, so the request's transaction has not begun yet) and kept on request.state so
    that templates and error pages can show who is signed in."""
    if hasattr(request.state, "signed_in"):
        return cast(SignedIn | None, request.state.signed_in)
    engine, now = get_engine(request), get_clock(request)()
    with Session(engine, expire_on_commit=False) as read:
        found = live_session(session=read, token=request.cookies.get(SESSION_COOKIE, ""),
                             now=now, settings=get_settings(request))
    if found is not None:
        touch(engine=engine, web_session=found[0], now=now)
    signed_in = SignedIn(*found) if found else None
    request.state.signed_in = signed_in
    request.state.user = signed_in.user if signed_in else None
    return signed_in


def get_signed_in(request: Request) -> SignedIn | None:
    return signed_in_for(request)


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
