"""`/demo/tap`: in the demo only, buttons that tap a demo pupil's virtual card on the
demo till's reader, so a newcomer sees a tap go from card to till screen.

The portal knows nothing of virtual cards: `moulin demo` puts a `DemoTapper` on
`app.state.demo_tapper`; without it, outside development, or for staff of another school
than the demo till's, the page does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Protocol

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from parent_portal.access import TILL_ROLES, StaffViewer, Viewer, school_ids_with
from parent_portal.deps import SessionDep, SettingsDep
from parent_portal.templating import render
from school.errors import NotFound
from school.models import Device

router = APIRouter()


@dataclass(frozen=True)
class DemoCard:
    key: str
    label: str  # the pupil and the kind of card, e.g. "Léa Martin — NTAG 424 DNA"
    note: str = ""  # e.g. "copied card: its SUN was already used"


class DemoTapper(Protocol):
    till_device_id: int
    reader: str  # how the cards reach the reader, e.g. "pcscd + vpcd"

    def cards(self) -> list[DemoCard]: ...

    def tap(self, key: str) -> None:
        """Tap the card in the background; raises KeyError for an unknown key."""
        ...


def _tapper(request: Request, settings: SettingsDep, viewer: Viewer,
            session: SessionDep) -> DemoTapper:
    """The demo's tapper, for those who may work the demo till (its school's cashiers,
    office and admins)."""
    tapper: DemoTapper | None = getattr(request.app.state, "demo_tapper", None)
    if settings.environment != "development" or tapper is None:
        raise NotFound("no demo here")
    till = session.get(Device, tapper.till_device_id)
    if till is None or till.school_id not in school_ids_with(session, viewer.user_id,
                                                             TILL_ROLES):
        raise NotFound("no demo here")
    return tapper


@router.get("/demo/tap")
def demo_page(
    request: Request, viewer: StaffViewer, settings: SettingsDep, session: SessionDep,
    tapped: str | None = None,
) -> Response:
    tapper = _tapper(request, settings, viewer, session)
    cards = tapper.cards()
    done = next((c.label for c in cards if c.key == tapped), None)
    return render(request, "demo_tap.html", {"tapper": tapper, "cards": cards, "tapped": done})


@router.post("/demo/tap")
def demo_tap(
    request: Request, viewer: StaffViewer, settings: SettingsDep, session: SessionDep,
    key: Annotated[str, Form()],
) -> Response:
    tapper = _tapper(request, settings, viewer, session)
    try:
        tapper.tap(key)
    except KeyError as exc:
        raise NotFound("no such demo card") from exc
    return RedirectResponse(f"/demo/tap?tapped={key}", status_code=303)
