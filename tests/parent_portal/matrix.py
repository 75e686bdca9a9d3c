"""The access matrix's machinery: what a route takes, whose records to put in, how to send
the request, and what the answer must be (see test_access_matrix.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import cv2
import httpx
import numpy as np
from fastapi import FastAPI, params
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts

from parent_portal.csrf import CSRF_FIELD
from tests.parent_portal import route_access as ra
from tests.parent_portal.world import Ground

STREAMING = ("text/event-stream", "multipart/x-mixed-replace")
REFUSED = frozenset({403, 404})
# Values for form fields that name no record, valid enough to get past the form's own
# checks, so that only the access check can refuse.
FORM_VALUES = {
    "starts": "07:00", "ends": "07:30", "day": "2027-01-04", "weekday": "3", "amount": "1",
    "tender": "cash", "direction": "credit", "reason": "test", "document_ref": "dossier",
    "name": "Test", "source": "http://192.0.2.7/video.mjpg", "session_minutes": "10",
    "daily_quota_minutes": "60", "daily_limit": "5", "alert_below": "2", "key": "x",
    "nonce": "matrix-nonce-0123456789abcdef0123456789",
}


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
    # Field values this caller's role must never be shown (a tariff band, see
    # docs/accounts.md).
    forbidden_fields: set[str] = field(default_factory=set)

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


def _record(name: str) -> bool:
    return ra.PARAM_KINDS.get(name) is not None


def shape_of(route: RouteContext) -> Shape:
    every = list(_dependants(route.dependant))
    query = list(dict.fromkeys(f.name for d in every for f in d.query_params
                               if _record(f.name) and _is_int(f.field_info.annotation)))
    form: list[str] = []
    files: list[str] = []
    other: dict[str, str] = {}
    json = False
    for f in (f for d in every for f in d.body_params):
        if isinstance(f.field_info, params.File):
            files.append(f.alias)
        elif isinstance(f.field_info, params.Form):
            if _record(f.alias):
                form.append(f.alias)
            else:
                other[f.alias] = FORM_VALUES.get(f.alias, "1" if _is_int(
                    f.field_info.annotation) else "x")
        else:
            json = True
    path = [name for name in route.param_convertors if _record(name)]
    return Shape(path, query, form, files, other, json)


def pick(ground: Ground, kind: str | None, choice: Choice) -> str:
    """The id of the `kind` of record that `choice` owns."""
    campus = ground.world.campuses[choice.campus]
    family = campus.families[choice.family]
    index = next((i for i, p in enumerate(family.pupils)
                  if p.classroom_id == campus.rooms[choice.room].id), 0)
    ids: dict[str | None, Any] = {
        "pupil": family.pupils[index].id, "card": family.cards[index].id,
        "receipt": family.receipts[index].id, "transaction": family.transactions[index].id,
        "intent": family.intents[0].intent_id, "user": family.parent.id,
        "classroom": campus.rooms[choice.room].id, "camera": campus.cameras[choice.room].id,
        "slot": campus.slots[choice.room].id, "consent": campus.consents[choice.room].id,
        "school": campus.school.id, "day": campus.closed_day.id, "device": campus.till.id,
    }
    if kind not in ids:
        raise AssertionError(f"the world has no `{kind}` records: build some in "
                             "tests/parent_portal/world.py and name them in matrix.pick")
    return str(ids[kind])


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
    # A path parameter that names no record (a token, a page name) gets a plain value.
    path = re.sub(r"{(\w+)(:\w+)?}",
                  lambda m: attempt.values.get(("path", m.group(1)), "0"), route.path)
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


def operations(app: FastAPI) -> Iterator[tuple[str, RouteContext]]:
    """Every (method, route) of the app, with the dependencies its routers add."""
    for route in iter_route_contexts(app.routes):
        if isinstance(route.original_route, APIRoute):
            for method in sorted((route.methods or set()) - {"HEAD"}):
                yield method, route
