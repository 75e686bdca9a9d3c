"""Pupil photos: uploaded by the office, checked by content, re-encoded without metadata,
and shown only to the pupil's guardians and the school's staff."""

from __future__ import annotations

import struct
import uuid
import zlib

import cv2
import numpy as np
import pytest
from sqlmodel import Session, select

from school import photos
from school.devices import add_device
from school.models import AuditEvent, ClassroomStaff, DeviceKind, Pupil, Role, User
from school.people import grant_role
from school.settings import Settings
from tests import factories
from tests.conftest import FakeClock
from tests.factories import SmallSchool
from tests.parent_portal.conftest import TestClient, csrf_from, signed_in

SECRET = b"GPS-48.8584N-2.2945E-home"


def jpeg(width: int = 1200, height: int = 900) -> bytes:
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[:, : width // 2] = (40, 120, 200)
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    return bytes(data.tobytes())


def exif_with_gps(secret: bytes) -> bytes:
    """An APP1 EXIF segment whose GPS directory holds a latitude and `secret`."""
    gps_ifd = 26
    data = gps_ifd + 2 + 3 * 12 + 4
    lat = struct.pack(">6I", 48, 1, 51, 1, 2400, 100)
    tiff = b"MM\x00\x2a" + struct.pack(">I", 8)
    tiff += struct.pack(">H", 1) + struct.pack(">HHII", 0x8825, 4, 1, gps_ifd) + b"\0" * 4
    tiff += struct.pack(">H", 3)
    tiff += struct.pack(">HHI", 0x0001, 2, 2) + b"N\0\0\0"
    tiff += struct.pack(">HHII", 0x0002, 5, 3, data)
    tiff += struct.pack(">HHII", 0x001B, 7, len(secret), data + len(lat))
    tiff += b"\0" * 4 + lat + secret
    payload = b"Exif\0\0" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header declares `width`×`height` (a decompression bomb's trick)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
            + png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + png_chunk(b"IEND", b""))


def upload(client: TestClient, pupil_id: int, data: bytes, name: str = "photo.jpg",
           content_type: str = "image/jpeg") -> object:
    page = client.get(f"/staff/pupils/{pupil_id}/photo")
    assert page.status_code == 200, page.text
    return client.post(f"/staff/pupils/{pupil_id}/photo",
                       data={"csrf_token": csrf_from(page.text)},
                       files={"photo": (name, data, content_type)})


@pytest.fixture
def lea(small_school: SmallSchool) -> Pupil:
    return small_school.pupils[0]


def test_the_office_uploads_a_photo_stripped_of_its_gps_position(
    client: TestClient, lea: Pupil, session: Session, settings: Settings
) -> None:
    original = jpeg()
    with_gps = original[:2] + exif_with_gps(SECRET) + original[2:]
    assert SECRET in with_gps
    signed_in(client, "office@example.org")
    response = upload(client, lea.id or 0, with_gps)
    assert response.status_code == 303
    assert response.headers["location"] == f"/staff/pupils/{lea.id}/photo?done=saved"

    session.rollback()  # end the test's read transaction: see what the app wrote
    session.refresh(lea)
    assert lea.photo_path == f"photos/{lea.school_id}/{lea.id}.jpg"
    stored = (settings.data_dir / lea.photo_path).read_bytes()
    assert stored.startswith(b"\xff\xd8\xff")
    assert SECRET not in stored
    assert b"Exif" not in stored
    assert max(photos.image_size(stored)) == photos.MAX_SIDE
    assert photos.image_size(stored) == (480, 360)  # the proportions are kept
    served = client.get(f"/photos/pupil/{lea.id}")
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/jpeg"
    assert "no-store" in served.headers["cache-control"]
    assert served.content == stored
    audit = session.exec(select(AuditEvent).where(AuditEvent.action == "pupil.photo")).one()
    assert audit.target_id == str(lea.id)


def test_png_metadata_is_dropped_too(client: TestClient, lea: Pupil, session: Session,
                                     settings: Settings) -> None:
    ok, png = cv2.imencode(".png", np.full((50, 40, 3), 200, dtype=np.uint8))
    assert ok
    raw = bytes(png.tobytes())
    # A text chunk right after IHDR (8 bytes of signature + 25 of IHDR).
    with_text = raw[:33] + png_chunk(b"tEXt", b"Comment\0" + SECRET) + raw[33:]
    signed_in(client, "admin@example.org")
    assert upload(client, lea.id or 0, with_text, "x.png", "image/png").status_code == 303
    session.rollback()  # end the test's read transaction: see what the app wrote
    session.refresh(lea)
    stored = (settings.data_dir / (lea.photo_path or "")).read_bytes()
    assert stored.startswith(b"\xff\xd8\xff")
    assert SECRET not in stored
    assert photos.image_size(stored) == (40, 50)  # small photos are not enlarged


@pytest.mark.parametrize(("data", "status", "message"), [
    (b"GIF89a" + b"\0" * 100, 400, "pas une image JPEG ou PNG"),
    (b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", 400,
     "pas une image JPEG ou PNG"),
    (png_claiming(100_000, 100_000), 400, "trop de pixels"),
    (jpeg()[:400], 400, "abîmée"),
    (b"\xff\xd8\xff" + b"\0" * (photos.MAX_UPLOAD_BYTES + 10), 413, "trop volumineuse"),
])
def test_what_is_not_a_photo_is_refused_and_nothing_changes(
    client: TestClient, lea: Pupil, session: Session, settings: Settings,
    data: bytes, status: int, message: str,
) -> None:
    signed_in(client, "office@example.org")
    # The claimed type and name are not trusted: only the content counts.
    response = upload(client, lea.id or 0, data, "photo.jpg", "image/jpeg")
    assert response.status_code == status
    assert message in response.text
    session.rollback()  # end the test's read transaction: see what the app wrote
    session.refresh(lea)
    assert lea.photo_path is None
    assert not (settings.data_dir / photos.PHOTO_DIR).exists()


def test_an_upload_far_above_the_limit_is_cut_off(client: TestClient, lea: Pupil,
                                                  session: Session) -> None:
    signed_in(client, "office@example.org")
    response = upload(client, lea.id or 0, b"\xff\xd8\xff" + b"\0" * 3 * 1024 * 1024)
    assert response.status_code == 413
    session.rollback()  # end the test's read transaction: see what the app wrote
    session.refresh(lea)
    assert lea.photo_path is None


def test_only_guardians_and_the_schools_staff_see_a_photo(
    client: TestClient, lea: Pupil, session: Session,
) -> None:
    signed_in(client, "office@example.org")
    assert upload(client, lea.id or 0, jpeg()).status_code == 303
    session.rollback()  # a fresh transaction, after the app's write
    other = factories.school(session, slug="autre", name="École du Pont")
    head = factories.user(session, "head@autre.example.org")
    grant_role(session=session, user=head, school=other, role=Role.ADMIN)
    session.commit()

    # The teacher teaches CE1, not Léa's CP; a cashier sees a photo only at a tap (below).
    session.add(ClassroomStaff(classroom_id=lea.classroom_id + 1 if lea.classroom_id else 0,
                               user_id=session.exec(select(User.id).where(
                                   User.email == "teacher@example.org")).one()))
    session.commit()
    expected = {"parent@example.org": 200, "office@example.org": 200,
                "teacher@example.org": 404, "cashier@example.org": 404,
                "other@example.org": 404, "head@autre.example.org": 404}
    for email, status in expected.items():
        client.cookies.clear()
        signed_in(client, email)
        assert client.get(f"/photos/pupil/{lea.id}").status_code == status, email
    client.cookies.clear()
    anonymous = client.get(f"/photos/pupil/{lea.id}")
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/login?")
    session.rollback()
    denied = session.exec(select(AuditEvent).where(AuditEvent.action == "access.denied")).all()
    assert sorted(e.detail["page"] for e in denied) == ["photo"] * 4


def test_only_office_and_admin_of_the_school_change_photos(
    client: TestClient, lea: Pupil, session: Session,
) -> None:
    for email in ("teacher@example.org", "cashier@example.org"):
        client.cookies.clear()
        signed_in(client, email)
        assert client.get(f"/staff/pupils/{lea.id}/photo").status_code == 403
        token = csrf_from(client.get("/staff").text)
        refused = client.post(f"/staff/pupils/{lea.id}/photo", data={"csrf_token": token},
                              files={"photo": ("p.jpg", jpeg(), "image/jpeg")})
        assert refused.status_code == 403
    session.rollback()
    other = factories.school(session, slug="autre", name="École du Pont")
    head = factories.user(session, "head@autre.example.org")
    grant_role(session=session, user=head, school=other, role=Role.OFFICE)
    session.commit()
    client.cookies.clear()
    signed_in(client, "head@autre.example.org")
    assert client.get(f"/staff/pupils/{lea.id}/photo").status_code == 404
    session.rollback()  # end the test's read transaction: see what the app wrote
    session.refresh(lea)
    assert lea.photo_path is None


def test_deleting_a_photo(client: TestClient, lea: Pupil, session: Session,
                          settings: Settings) -> None:
    signed_in(client, "office@example.org")
    assert upload(client, lea.id or 0, jpeg()).status_code == 303
    page = client.get(f"/staff/pupils/{lea.id}/photo")
    assert f'src="/photos/pupil/{lea.id}"' in page.text
    gone = client.post(f"/staff/pupils/{lea.id}/photo/delete",
                       data={"csrf_token": csrf_from(page.text)})
    assert gone.status_code == 303
    session.rollback()  # end the test's read transaction: see what the app wrote
    session.refresh(lea)
    assert lea.photo_path is None
    assert not (settings.data_dir / photos.relative_path(lea.school_id, lea.id or 0)).exists()
    assert client.get(f"/photos/pupil/{lea.id}").status_code == 404


def test_the_till_verdict_points_at_the_served_photo(
    client: TestClient, lea: Pupil, session: Session, small_school: SmallSchool,
    clock: FakeClock,
) -> None:
    """A cashier sees the photo of a pupil who tapped today, on the till screen, and no
    other pupil's; tomorrow not even that one's."""
    from cardpay import cards
    from cardpay.models import CardKind

    signed_in(client, "office@example.org")
    assert upload(client, small_school.pupils[1].id or 0, jpeg()).status_code == 303
    assert upload(client, lea.id or 0, jpeg()).status_code == 303
    session.rollback()
    cards.issue_card(session=session, pupil=lea, uid="A1B2C3D4", kind=CardKind.UID)
    _, token = add_device(session=session, school=small_school.school, kind=DeviceKind.TILL,
                          name="Cantine")
    session.commit()
    verdict = client.post("/api/till/taps", headers={"Authorization": f"Bearer {token}"}, json={
        "tap_id": str(uuid.uuid4()), "read_at": clock.now.isoformat(),
        "card": {"uid": "A1B2C3D4"},
    }).json()
    assert verdict["pupil"] is not None, verdict
    assert verdict["pupil"]["photo_url"] == f"/photos/pupil/{lea.id}"
    client.cookies.clear()
    signed_in(client, "cashier@example.org")
    assert client.get(verdict["pupil"]["photo_url"]).status_code == 200
    assert client.get(f"/photos/pupil/{small_school.pupils[1].id}").status_code == 404
    clock.advance(days=1)
    client.cookies.clear()
    signed_in(client, "cashier@example.org")
    assert client.get(verdict["pupil"]["photo_url"]).status_code == 404
