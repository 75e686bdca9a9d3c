"""Every route against every kind of caller: signed out, a till, each staff role of one
school, and parents of two families, with records of their own and of others (another
family, another school, and for teachers' room-bound pages another room).

The routes come from `app.routes`, so routes added later are walked too; who may use
each comes from its dependencies or from tests/parent_portal/route_access.py. For each:

- signed out: the login page (401 under /api/); a till's token works only on the till API;
- without the route's role: 403 or 404;
- with it: the page for records of their own (a positive control, so that a route that
  refuses everyone does not pass), 403 or 404 for anyone else's;
- no page answered with 200 shows the name of a family the caller has no business with,
  nor the HTML that the world's records hold (a room name, allergies) unescaped;
- a POST that is refused changes nothing in the database.

It runs against the app served by uvicorn, so streaming routes answer like the others.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
from fastapi import FastAPI, params
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from sqlalchemy import select as sa_select
from sqlmodel import Session, SQLModel
from starlette.routing import Mount

from parent_portal.app import create_app
from parent_portal.csrf import CSRF_COOKIE, CSRF_FIELD
from school.models import Role
from school.security import new_token
from tests.live import serving
from tests.parent_portal import route_access as ra
from tests.parent_portal import world
from tests.parent_portal.world import Ground

pytestmark = pytest.mark.timeout(300)

STREAMING = ("text/event-stream", "multipart/x-mixed-replace")
REFUSED = frozenset({403, 404})
# Rows a refused request may add or touch: the refusal's own audit, the idle timer.
NOT_DATA = frozenset({"audit_event", "web_session", "login_failure", "device_auth_failure",
                      "alembic_version"})
# Values for form fields that name no record, valid enough to get past the form's own
# checks, so that only the access check can refuse.
FORM_VALUES = {
    "starts": "07:00", "ends": "07:30", "day": "2027-01-04", "weekday": "3", "amount": "1",
    "tender": "cash", "direction": "credit", "reason": "test", "document_ref": "dossier",
    "name": "Test", "source": "http://192.0.2.7/video.mjpg", "session_minutes": "10",
    "daily_quota_minutes": "60", "daily_limit": "5", "alert_below": "2", "key": "x",
    "nonce": "matrix-nonce-0123456789abcdef0123456789",
}
# The callers. Parents are families 0 and 1 of the first school; staff hold one role there.
IDENTITIES = ["anonymous", "till", ra.TEACHER, ra.CASHIER, ra.OFFICE, ra.ADMIN,
              "parent 0", "parent 1"]


@dataclass(frozen=True)
class Choice:
    """Whose records: a school, a family of it, and a room of it."""

    campus: int
    family: int
    room: int


@dataclass
class Caller:
    name: str
    roles: frozenset[str]
    signed_in: bool
    own: Choice
    foreign: list[Choice]
    room_foreign: Choice | None
    client: httpx.Client
    csrf: str
    forbidden_names: set[str]

    def records_of_own(self, rule: ra.Rule) -> bool:
        """Whether the rule gives this caller records of their own (not just pages about
        themselves, as SIGNED_IN does)."""
        return bool(self.roles & (rule.who - {ra.SIGNED_IN}))

    def permitted(self, rule: ra.Rule) -> bool:
        return self.records_of_own(rule) or (self.signed_in and ra.SIGNED_IN in rule.who)


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    requests: int = 0

    def add(self, text: str) -> None:
        self.problems.append(text)


@dataclass(frozen=True)
class Shape:
    """What a route takes: record parameters by where they go, and other form fields."""

    path: list[str]
    query: list[str]
    form: list[str]
    files: list[str]
    other_form: dict[str, str]
    json: bool

    @property
    def records(self) -> list[tuple[str, str]]:
        return ([("path", n) for n in self.path] + [("query", n) for n in self.query]
                + [("form", n) for n in self.form])


def _is_int(annotation: Any) -> bool:
    return annotation is int or int in getattr(annotation, "__args__", ())


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for sub in dependant.dependencies:
        yield from _dependants(sub)


def shape_of(route: RouteContext) -> Shape:
    every = list(_dependants(route.dependant))
    query = [f.name for d in every for f in d.query_params
             if f.name in ra.PARAM_KINDS and _is_int(f.field_info.annotation)]
    form: list[str] = []
    files: list[str] = []
    other: dict[str, str] = {}
    json = False
    for f in (f for d in every for f in d.body_params):
        if isinstance(f.field_info, params.File):
            files.append(f.alias)
        elif isinstance(f.field_info, params.Form):
            if f.alias in ra.PARAM_KINDS:
                form.append(f.alias)
            else:
                other[f.alias] = FORM_VALUES.get(f.alias, "1" if _is_int(
                    f.field_info.annotation) else "x")
        else:
            json = True
    return Shape(list(route.param_convertors), query, form, files, other, json)


def pick(ground: Ground, kind: str, choice: Choice) -> str:
    campus = ground.world.campuses[choice.campus]
    family = campus.families[choice.family]
    index = next((i for i, p in enumerate(family.pupils)
                  if p.classroom_id == campus.rooms[choice.room].id), 0)
    found: Any = {
        "pupil": family.pupils[index].id, "card": family.cards[index].id,
        "receipt": family.receipts[index].id, "transaction": family.transactions[index].id,
        "intent": family.intents[0].intent_id, "user": family.parent.id,
        "classroom": campus.rooms[choice.room].id, "camera": campus.cameras[choice.room].id,
        "slot": campus.slots[choice.room].id, "consent": campus.consents[choice.room].id,
        "school": campus.school.id, "day": campus.closed_day.id, "device": campus.till.id,
    }[kind]
    return str(found)


@dataclass(frozen=True)
class Attempt:
    label: str  # "own", "foreign", "mixed"
    values: dict[tuple[str, str], str]


def attempts(ground: Ground, shape: Shape, caller: Caller, rule: ra.Rule) -> Iterator[Attempt]:
    """Records of the caller's own, then of others: all of them, and, where a route names
    several, one at a time among the caller's own."""

    def values(choice_of: dict[tuple[str, str], Choice]) -> dict[tuple[str, str], str]:
        return {slot: pick(ground, ra.PARAM_KINDS[slot[1]], choice)
                for slot, choice in choice_of.items()}

    records = shape.records
    own = dict.fromkeys(records, caller.own)
    yield Attempt("own", values(own))
    if not records:
        return
    foreign = list(caller.foreign)
    if rule.teacher_rooms and ra.TEACHER in caller.roles and caller.room_foreign:
        foreign.append(caller.room_foreign)
    for other in foreign:
        yield Attempt("foreign", values(dict.fromkeys(records, other)))
        if len(records) > 1:
            for slot in records:
                yield Attempt("mixed", values({**own, slot: other}))


def url_of(route: RouteContext, attempt: Attempt) -> tuple[str, dict[str, str]]:
    path = re.sub(r"{(\w+)(:\w+)?}", lambda m: attempt.values[("path", m.group(1))], route.path)
    query = {name: value for (where, name), value in attempt.values.items() if where == "query"}
    return path, query


def send(caller: Caller, method: str, route: RouteContext, shape: Shape,
         attempt: Attempt) -> tuple[int, str, str, str]:
    """Status, location, type and text of the answer; streams are not read past their
    headers."""
    path, query = url_of(route, attempt)
    kwargs: dict[str, Any] = {"params": query}
    if method != "GET":
        form = {name: value for (where, name), value in attempt.values.items()
                if where == "form"}
        if shape.json:
            kwargs["json"] = {}
        else:
            kwargs["data"] = {CSRF_FIELD: caller.csrf, **shape.other_form, **form}
        if shape.files:
            kwargs["files"] = dict.fromkeys(shape.files, ("photo.jpg", PHOTO, "image/jpeg"))
    with caller.client.stream(method, path, **kwargs) as response:
        kind = response.headers.get("content-type", "")
        text = "" if kind.startswith(STREAMING) else response.read().decode("utf-8", "replace")
        return response.status_code, response.headers.get("location", ""), kind, text


def _photo() -> bytes:
    ok, data = cv2.imencode(".jpg", np.zeros((8, 8, 3), dtype=np.uint8))
    assert ok
    return bytes(data.tobytes())


PHOTO = _photo()


def expected(caller: Caller, rule: ra.Rule, attempt: Attempt, method: str,
             path: str) -> tuple[set[int] | None, str]:
    """The statuses allowed for this attempt (None: any but a 5xx), and why."""
    if ra.PUBLIC in rule.who:
        if method == "GET" and not caller.signed_in and rule.ok is not None:
            return {rule.ok}, "a public page"
        return None, "a public page"
    if ra.DEVICE in rule.who:
        if ra.DEVICE in caller.roles:
            return ({rule.ok} if rule.ok else None), "the till's own API"
        return {401}, "the till API wants a device token"
    if not caller.signed_in:
        return ({401} if path.startswith("/api/") else {303}), "signed out: to the login page"
    if ra.STREAM in rule.who:
        return set(REFUSED), "a stream needs a URL signed for this session"
    if not caller.permitted(rule):
        return set(REFUSED), f"{caller.name} is not among {sorted(rule.who)}"
    has_records = bool(attempt.values)
    if has_records and not caller.records_of_own(rule):
        return set(REFUSED), f"{caller.name} has no records of their own here"
    if attempt.label != "own":
        only_query = all(where == "query" for where, _ in attempt.values)
        allowed = set(REFUSED) | ({200} if only_query else set())
        return allowed, "someone else's records"
    if method != "GET":
        return None, "own records (not posted: the functional tests do that)"
    return ({rule.ok} if rule.ok is not None else None), "own records"


@dataclass
class Matrix:
    app: FastAPI
    ground: Ground
    callers: dict[str, Caller]


def _caller(name: str, ground: Ground, base_url: str) -> Caller:
    alpha = ground.world.campuses[0]
    everyone = {n for c in ground.world.campuses for f in c.families for n in f.names()}
    alpha_names = {n for f in alpha.families for n in f.names()}
    client = httpx.Client(base_url=base_url, follow_redirects=False, timeout=20)
    csrf = new_token()
    roles: frozenset[str] = frozenset()
    signed_in = False
    own, foreign, room_foreign = Choice(0, 0, 0), [Choice(1, 0, 0)], None
    forbidden = everyone
    if name == "anonymous":
        client.cookies.set(CSRF_COOKIE, csrf)
    elif name == "till":
        roles = frozenset({ra.DEVICE})
        client.headers["Authorization"] = f"Bearer {alpha.till_token}"
        client.cookies.set(CSRF_COOKIE, csrf)
        forbidden = everyone - alpha_names
    else:
        signed_in = True
        if name.startswith("parent"):
            family = int(name.split()[1])
            user = alpha.families[family].parent
            roles = frozenset({ra.PARENT})
            own = Choice(0, family, 0)
            foreign = [Choice(0, 1 - family, 1 - family), Choice(1, family, family)]
            forbidden = everyone - alpha.families[family].names()
        else:
            user = alpha.staff[Role(name)]
            roles = frozenset({name})
            room_foreign = Choice(0, 1, 1)
            forbidden = everyone - alpha_names
        with Session(ground.engine, expire_on_commit=False) as session:
            cookies, csrf = world.session_cookie(session, user, ground.settings,
                                                 ground.clock())
        client.cookies.update(cookies)
    return Caller(name, roles, signed_in, own, foreign, room_foreign, client, csrf, forbidden)


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory, _migrated_sqlite: Path) -> Iterator[Matrix]:
    ground = world.standalone(tmp_path_factory.mktemp("matrix"), _migrated_sqlite)
    app = create_app(ground.settings, ground.engine, clock=ground.clock)
    try:
        with serving(app) as base_url:
            callers = {name: _caller(name, ground, base_url) for name in IDENTITIES}
            yield Matrix(app, ground, callers)
            for caller in callers.values():
                caller.client.close()
    finally:
        app.state.cameras.close()
        ground.engine.dispose()


def operations(app: FastAPI) -> Iterator[tuple[str, RouteContext]]:
    """Every (method, route) of the app, with the dependencies its routers add."""
    for route in iter_route_contexts(app.routes):
        if isinstance(route.original_route, APIRoute):
            for method in sorted((route.methods or set()) - {"HEAD"}):
                yield method, route


def test_every_route_is_classified(matrix: Matrix) -> None:
    problems = []
    seen = set()
    for route in iter_route_contexts(matrix.app.routes):
        if isinstance(route.original_route, Mount) and route.path not in ra.MOUNTS:
            problems.append(f"mount {route.path}: say who may use it in MOUNTS")
    for method, route in operations(matrix.app):
        seen.add((method, route.path))
        rule, _ = ra.rule_for(method, route)
        if rule is None:
            problems.append(f"{method} {route.path}: no dependency says who may use it; "
                            "classify it in RULES")
        for name in route.param_convertors:
            if name not in ra.PARAM_KINDS:
                problems.append(f"{method} {route.path}: tell PARAM_KINDS what `{name}` names")
    stale = sorted(set(ra.RULES) - seen)
    problems += [f"{m} {p}: in RULES but no such route any more" for m, p in stale]
    assert not problems, ("tests/parent_portal/route_access.py needs updating:\n"
                          + "\n".join(problems))


def _check(matrix: Matrix, report: Report, caller: Caller, method: str, route: RouteContext,
           rule: ra.Rule, source: str, attempt: Attempt) -> None:
    shape = shape_of(route)
    status, location, kind, text = send(caller, method, route, shape, attempt)
    report.requests += 1
    path, _ = url_of(route, attempt)
    allowed, why = expected(caller, rule, attempt, method, route.path)
    where = f"{caller.name} {method} {path} ({attempt.label} records)"
    if status >= 500:
        report.add(f"{where}: server error {status}")
    elif allowed is not None and status not in allowed:
        hint = ""
        if attempt.label == "own" and source == "dependencies" and status in REFUSED:
            hint = (" — the route's dependencies open it to "
                    f"{sorted(rule.who)}; if it needs a narrower role, classify it in RULES "
                    "in tests/parent_portal/route_access.py")
        report.add(f"{where}: {status}, expected {sorted(allowed)} ({why}){hint}")
    if status == 303 and not caller.signed_in and ra.PUBLIC not in rule.who \
            and not location.startswith("/login?next="):
        report.add(f"{where}: redirected to {location!r}, not the login page")
    if status == 200:
        leaked = sorted(n for n in caller.forbidden_names if n in text)
        if leaked:
            report.add(f"{where}: shows {leaked}, which {caller.name} must not see")
        unescaped = [x for x in world.XSS if x in text] if kind.startswith("text/html") else []
        if unescaped:
            report.add(f"{where}: renders {unescaped} unescaped")


def test_every_get_route(matrix: Matrix) -> None:
    report = Report()
    for method, route in operations(matrix.app):
        rule, source = ra.rule_for(method, route)
        if method != "GET" or rule is None:
            continue
        shape = shape_of(route)
        for caller in matrix.callers.values():
            for attempt in attempts(matrix.ground, shape, caller, rule):
                _check(matrix, report, caller, method, route, rule, source, attempt)
    assert report.requests > 0
    assert not report.problems, "\n".join(report.problems)


def dump(matrix: Matrix) -> dict[str, list[tuple[Any, ...]]]:
    tables = {}
    with matrix.ground.engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            if table.name not in NOT_DATA:
                rows = conn.execute(sa_select(table).order_by(*table.primary_key.columns))
                tables[table.name] = [tuple(r) for r in rows]
    return tables


def test_refused_posts_change_nothing(matrix: Matrix) -> None:
    report = Report()
    for method, route in operations(matrix.app):
        rule, source = ra.rule_for(method, route)
        if method == "GET" or rule is None or ra.PUBLIC in rule.who:
            continue
        shape = shape_of(route)
        before = dump(matrix)
        sent = 0
        for caller in matrix.callers.values():
            for attempt in attempts(matrix.ground, shape, caller, rule):
                allowed, _ = expected(caller, rule, attempt, method, route.path)
                if allowed is None or not allowed <= REFUSED | {303, 401}:
                    continue  # a request that may succeed: not for this test
                _check(matrix, report, caller, method, route, rule, source, attempt)
                sent += 1
        after = dump(matrix)
        changed = sorted(t for t in before if before[t] != after[t])
        if changed:
            report.add(f"{method} {route.path}: refused requests changed {changed}")
        if not sent:
            report.add(f"{method} {route.path}: no refused request to send")
    assert report.requests > 0
    assert not report.problems, "\n".join(report.problems)
