"""The page an offer link opens: the holder of an existing account, signed in, accepts
roles a school's admin offered them (school.staff_offers)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from parent_portal.access import ViewerDep
from parent_portal.deps import ClockDep, SessionDep
from parent_portal.routes.auth import client_ip
from parent_portal.templating import render
from school import staff_offers
from school.models import School

router = APIRouter()
NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def _page(request: Request, context: dict[str, object], status_code: int = 200) -> Response:
    return render(request, "staff_offer.html", context, status_code=status_code,
                  headers=NO_STORE)


@router.get("/staff/offers/{token}")
def offer_page(request: Request, token: str, viewer: ViewerDep, session: SessionDep,
               clock: ClockDep) -> Response:
    try:
        offer = staff_offers.find_offer(session, token=token, user_id=viewer.user_id,
                                        now=clock())
    except staff_offers.OfferInvalid:
        return _page(request, {"state": "invalid", "school": None}, status_code=404)
    return _page(request, {"state": "form", "token": token,
                           "school": session.get(School, offer.school_id),
                           "roles": staff_offers.offered_roles(offer)})


@router.post("/staff/offers/{token}")
def accept(request: Request, token: str, viewer: ViewerDep, session: SessionDep,
           clock: ClockDep) -> Response:
    now = clock()
    try:
        offer = staff_offers.find_offer(session, token=token, user_id=viewer.user_id, now=now)
    except staff_offers.OfferInvalid:
        return _page(request, {"state": "invalid", "school": None}, status_code=404)
    staff_offers.accept_offer(session=session, offer=offer, user=viewer.user, now=now,
                              ip=client_ip(request))
    session.commit()
    return _page(request, {"state": "done", "school": session.get(School, offer.school_id),
                           "roles": staff_offers.offered_roles(offer)})
