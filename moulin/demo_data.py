"""The demo school: three classes of pupils with French names, their families and staff,
and their lunch accounts (`moulin.demo_money`).

Everything is derived from a fixed seed, so every demo looks the same.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass
from datetime import date

from sqlmodel import Session, select

from moulin import demo_money
from school.models import Classroom, ClassroomStaff, Pupil, Role, School, User
from school.people import grant_role, link_guardian
from school.security import hash_password

DEMO_PASSWORD = "moulin-demo"  # noqa: S105 - published in the README on purpose
DEMO_DOMAIN = "demo.moulin"
PUPILS_PER_CLASS = 20

CLASSES = (("Grande section", "maternelle"), ("CE1", "élémentaire"), ("CM2", "élémentaire"))
FIRST_NAMES = (
    "Léa",
    "Hugo",
    "Chloé",
    "Lucas",
    "Manon",
    "Louis",
    "Emma",
    "Gabriel",
    "Jade",
    "Arthur",
    "Louise",
    "Raphaël",
    "Alice",
    "Jules",
    "Lina",
    "Adam",
    "Rose",
    "Nathan",
    "Inès",
    "Paul",
    "Zoé",
    "Tom",
    "Camille",
    "Théo",
    "Anna",
    "Maël",
    "Juliette",
    "Noah",
    "Mila",
    "Sacha",
    "Ambre",
    "Léon",
    "Margaux",
    "Éthan",
    "Lou",
    "Victor",
    "Clara",
    "Timéo",
    "Sarah",
    "Aaron",
)
LAST_NAMES = (
    "Martin",
    "Bernard",
    "Dubois",
    "Thomas",
    "Robert",
    "Richard",
    "Petit",
    "Durand",
    "Leroy",
    "Moreau",
    "Simon",
    "Laurent",
    "Lefebvre",
    "Michel",
    "Garcia",
    "David",
    "Bertrand",
    "Roux",
    "Vincent",
    "Fournier",
    "Morel",
    "Girard",
    "André",
    "Lefèvre",
    "Mercier",
    "Dupont",
    "Lambert",
    "Bonnet",
    "François",
    "Martinez",
    "Legrand",
    "Garnier",
    "Faure",
    "Rousseau",
    "Blanc",
    "Guerin",
    "Muller",
    "Henry",
    "Roussel",
    "Nicolas",
    "Perrin",
    "Morin",
    "Mathieu",
    "Clément",
    "Gauthier",
    "Dumont",
    "Lopez",
    "Fontaine",
    "Chevalier",
    "Robin",
    "Masson",
    "Sanchez",
    "Gérard",
    "Nguyen",
    "Boyer",
    "Denis",
    "Lemaire",
    "Duval",
    "Joly",
    "Gautier",
)
ALLERGIES = ("arachide", "lait de vache", "œuf", "gluten", "fruits à coque", "poisson")
DIETS = ("sans porc", "végétarien", "sans viande")
TARIFF_BANDS = ("T1", "T2", "T3", "T4", "T5")
GUARDIAN_FIRST = (
    "Anne",
    "Julien",
    "Sophie",
    "Nicolas",
    "Claire",
    "Thomas",
    "Isabelle",
    "Pierre",
    "Nathalie",
    "Olivier",
    "Céline",
    "Sébastien",
    "Aurélie",
    "Mathieu",
    "Émilie",
    "Romain",
    "Karima",
    "Mehdi",
    "Fatou",
    "Yann",
)
STAFF = (
    ("admin", "Hélène Directrice", Role.ADMIN),
    ("office", "Marc Secrétariat", Role.OFFICE),
    ("cashier", "Sylvie Cantine", Role.CASHIER),
    ("teacher", "Bruno Enseignant", Role.TEACHER),
)


@dataclass(frozen=True)
class DemoLogin:
    email: str
    role: str
    what: str


def _ascii(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if c.isascii() and (c.isalnum() or c == "-")).lower()


def seed(session: Session, *, today: date, master_key: bytes) -> list[DemoLogin]:
    """Fill an empty, migrated database with the demo school; return the logins to print.
    `master_key` signs the secure cards' taps in the history, as the cards would."""
    rng = random.Random(1993)  # noqa: S311 - demo data, not secrets
    password_hash = hash_password(DEMO_PASSWORD)
    school = School(
        slug="demo",
        name="École des Moulins (démo)",
        timezone="Europe/Paris",
        currency="EUR",
        locale="fr",
    )
    session.add(school)
    session.flush()
    rooms = []
    for name, level in CLASSES:
        room = Classroom(school_id=school.id, name=name, level=level)  # type: ignore[arg-type]
        session.add(room)
        rooms.append(room)
    session.flush()
    staff = _seed_staff(session, school, rooms, password_hash)
    start = date(today.year if today.month >= 9 else today.year - 1, 9, 1)
    names = rng.sample(
        [(f, ln) for f in FIRST_NAMES for ln in LAST_NAMES], PUPILS_PER_CLASS * len(rooms)
    )
    pupils = _seed_pupils(session, school, rooms, names, rng)
    _seed_families(session, pupils, rng, password_hash, start)
    clerk = session.exec(select(User).where(User.email == f"office@{DEMO_DOMAIN}")).one()
    demo_money.seed_money(session, school=school, pupils=pupils, clerk=clerk, today=today,
                          master_key=master_key)
    return [
        *staff,
        DemoLogin(
            f"parent@{DEMO_DOMAIN}",
            "parent",
            f"{pupils[0].full_name} ({rooms[0].name}) and "
            f"{pupils[PUPILS_PER_CLASS + 1].full_name} ({rooms[1].name})",
        ),
    ]


def _seed_staff(
    session: Session, school: School, rooms: list[Classroom], password_hash: str
) -> list[DemoLogin]:
    logins = []
    for local, full_name, role in STAFF:
        user = User(
            email=f"{local}@{DEMO_DOMAIN}", full_name=full_name, password_hash=password_hash
        )
        session.add(user)
        session.flush()
        grant_role(session=session, user=user, school=school, role=role)
        if role is Role.TEACHER:
            session.add(ClassroomStaff(classroom_id=rooms[1].id, user_id=user.id))  # type: ignore[arg-type]
        logins.append(DemoLogin(user.email, role.value, full_name))
    return logins


def _seed_pupils(
    session: Session,
    school: School,
    rooms: list[Classroom],
    names: list[tuple[str, str]],
    rng: random.Random,
) -> list[Pupil]:
    pupils = []
    for i, (first, last) in enumerate(names):
        room = rooms[i // PUPILS_PER_CLASS]
        age = 5 + 2 * (i // PUPILS_PER_CLASS)
        pupil = Pupil(
            school_id=school.id,  # type: ignore[arg-type]
            external_ref=f"DEMO-{i + 1:04d}",
            first_name=first,
            last_name=last,
            birth_date=date(2026 - age - 1, rng.randint(1, 12), rng.randint(1, 28)),
            classroom_id=room.id,
            allergies=rng.choice(ALLERGIES) if rng.random() < 0.15 else "",
            diet_notes=rng.choice(DIETS) if rng.random() < 0.2 else "",
            tariff_band=rng.choice(TARIFF_BANDS),
        )
        session.add(pupil)
        pupils.append(pupil)
    session.flush()
    return pupils


def _seed_families(
    session: Session, pupils: list[Pupil], rng: random.Random, password_hash: str, start: date
) -> None:
    # The showcase parent: one child in the first class, one in the second, same surname.
    first, second = pupils[0], pupils[PUPILS_PER_CLASS + 1]
    second.last_name = first.last_name
    parent = User(
        email=f"parent@{DEMO_DOMAIN}",
        full_name=f"Anne {first.last_name}",
        password_hash=password_hash,
        locale="fr",
    )
    session.add(parent)
    session.flush()
    for child in (first, second):
        link_guardian(session=session, user=parent, pupil=child, starts_on=start, relation="mère")
    used = {parent.email}
    for pupil in pupils:
        if pupil in (first, second):
            continue
        for relation in ("mère", "père")[: rng.choice((1, 2, 2))]:
            given = rng.choice(GUARDIAN_FIRST)
            email = f"{_ascii(given)}.{_ascii(pupil.last_name)}@{DEMO_DOMAIN}"
            n = 2
            while email in used:
                email = f"{_ascii(given)}.{_ascii(pupil.last_name)}{n}@{DEMO_DOMAIN}"
                n += 1
            used.add(email)
            user = User(
                email=email, full_name=f"{given} {pupil.last_name}", password_hash=password_hash
            )
            session.add(user)
            session.flush()
            link_guardian(
                session=session, user=user, pupil=pupil, starts_on=start, relation=relation
            )
