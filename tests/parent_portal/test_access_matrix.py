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

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import RouteContext, iter_route_contexts
from sqlalchemy import select as sa_select
from sqlmodel import Session, SQLModel
from starlette.routing import Mount

from parent_portal.app import create_app
from parent_portal.csrf import CSRF_COOKIE
from school.models import Role
from school.security import new_token
from tests.live import serving
from tests.parent_portal import route_access as ra
from tests.parent_portal import world
from tests.parent_portal.matrix import (
    REFUSED,
    Attempt,
    Caller,
    Choice,
    Report,
    attempts,
    expected,
    operations,
    send,
    shape_of,
    url_of,
)
from tests.parent_portal.world import Ground

# Rows a refused request may add or touch: the refusal's own audit, the idle timer.
NOT_DATA = frozenset({"audit_event", "web_session", "login_failure", "device_auth_failure",
                      "alembic_version"})
pytestmark = pytest.mark.timeout(300)

# The callers. Parents are families 0 and 1 of the first school; staff hold one role there.
# The other school's admin tries its own school's pages on the first school's parents
# (the matrix's 'mixed' attempts: their school, a parent of the other).
OTHER_ADMIN = "other school's admin"
IDENTITIES = ["anonymous", "till", ra.TEACHER, ra.CASHIER, ra.OFFICE, ra.ADMIN,
              "parent 0", "parent 1", OTHER_ADMIN]


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
    fields: set[str] = set()
    if name == "anonymous":
        client.cookies.set(CSRF_COOKIE, csrf)
    elif name == "till":
        roles = frozenset({ra.DEVICE})
        client.headers["Authorization"] = f"Bearer {alpha.till_token}"
        client.cookies.set(CSRF_COOKIE, csrf)
        forbidden = everyone - alpha_names
    else:
        signed_in = True
        if name == OTHER_ADMIN:
            beta = ground.world.campuses[1]
            user = beta.staff[Role.ADMIN]
            roles = frozenset({ra.ADMIN})
            own, foreign = Choice(1, 0, 0), [Choice(0, 0, 0), Choice(0, 1, 1)]
            forbidden = everyone - {n for f in beta.families for n in f.names()}
        elif name.startswith("parent"):
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
            forbidden = everyone - _seen_by(name, alpha)
            if name in (ra.TEACHER, ra.CASHIER):
                fields = {world.TARIFF_BAND}
        with Session(ground.engine, expire_on_commit=False) as session:
            cookies, csrf = world.session_cookie(session, user, ground.settings,
                                                 ground.clock())
        client.cookies.update(cookies)
    return Caller(name, roles, signed_in, own, foreign, room_foreign, client, csrf, forbidden,
                  fields)


def _seen_by(role: str, alpha: world.Campus) -> set[str]:
    """The names a staff role may see in its school (docs/accounts.md): office and admins
    every family's; a teacher the pupils of their own class; a cashier nobody's, outside
    the till screen (the world has no taps)."""
    if role == ra.TEACHER:
        return {n for f in alpha.families for p in f.pupils
                if p.classroom_id == alpha.teacher_room for n in (p.first_name, p.last_name)}
    if role == ra.CASHIER:
        return set()
    return {n for f in alpha.families for n in f.names()}


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
        fields = sorted(v for v in caller.forbidden_fields if v in text)
        if fields:
            report.add(f"{where}: shows {fields}, a field {caller.name} must not see")
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
