"""`moulin card provision` and `moulin card reset`: personalise blank NTAG 424 DNA cards on a
PC/SC reader (one line per card), and give cards back their factory keys.

Each card: wait for it, connect exclusively (no till interleaves its commands), read its
key versions, personalise or reset it (hardware.readers.ntag424_personalise), check the
SUN message it then sends, and record it (cardpay.personalised).
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager

import typer
from sqlmodel import Session, select

from cardpay import personalised
from cardpay.errors import CardPayError
from cardpay.sun import Keyring
from hardware.errors import CardRemoved, HardwareError
from hardware.readers.base import masked_uid
from hardware.readers.ntag424 import Ntag424
from hardware.readers.ntag424_files import SunTemplate
from hardware.readers.ntag424_personalise import (
    KeysFor,
    UnknownKeys,
    personalise,
    reset_to_factory,
)
from hardware.readers.pcsc import iso_kind, iso_version, read_uid
from hardware.readers.pcsc_link import CardBusy, CardLink, Watcher
from moulin import context
from school.models import Pupil

app = typer.Typer(help="NTAG 424 DNA cards: personalise blank ones, give them back.",
                  no_args_is_help=True)
_BUSY_PATIENCE = 5.0  # seconds: a till daemon on the same reader lets the card go by then


def _reader_filter(device: str) -> str | None:
    family, _, name = device.partition(":")
    if family != "pcsc":
        context.fail("personalising needs a PC/SC reader: --device pcsc or pcsc:NAME")
    return name or None


def _connect(watcher: Watcher, reader: str) -> CardLink:
    deadline = time.monotonic() + _BUSY_PATIENCE
    while True:
        if watcher.context is None:
            raise HardwareError("PC/SC context lost")
        try:
            return CardLink(watcher.context, reader, exclusive=True)
        except CardBusy:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@contextmanager
def _cards(device: str, wait: float, count: int | None) -> Iterator[Generator[CardLink]]:
    watcher = Watcher(_reader_filter(device))

    def each() -> Generator[CardLink]:
        done = 0
        while count is None or done < count:
            found = watcher.wait(time.monotonic() + wait)
            if found is None:
                context.console.print(f"no card for {wait:.0f} s: done.", highlight=False)
                return
            link = _connect(watcher, found[0])
            try:
                yield link
            finally:
                link.disconnect()
            done += 1

    links = each()
    try:
        yield links
    finally:
        links.close()  # disconnects a card still held, before the context goes
        watcher.drop_context()


def _keyring() -> Keyring:
    settings = context.load_settings()
    try:
        return Keyring(settings.effective_card_master_key(),
                       later=settings.card_master_keys_by_version())
    except ValueError as exc:
        context.fail(f"MOULIN_CARD_MASTER_KEYS_LATER: {exc}")


def _keys_for(keyring: Keyring, uid: bytes, highest: int) -> KeysFor:
    """Keys for the versions this deployment has given out; None for any other."""
    def lookup(version: int) -> Sequence[bytes] | None:
        if version > highest:
            return None
        return keyring.card_keys(uid, version).keys
    return lookup


def _identify(link: CardLink) -> bytes:
    uid = read_uid(link)
    if iso_kind(iso_version(link)).value != "ntag424_dna":
        raise UnknownKeys("not an NTAG 424 DNA: nothing to personalise")
    return uid


def _pupil(session: Session, ref: str | None, school: str | None) -> Pupil | None:
    if ref is None:
        return None
    found = context.school(session, school)
    pupil = session.exec(select(Pupil).where(Pupil.school_id == found.id,
                                             Pupil.external_ref == ref)).first()
    if pupil is None or pupil.left_on is not None:
        context.fail(f"no current pupil {ref!r} in school {found.slug!r}")
    return pupil


def _provision_one(session: Session, keyring: Keyring, link: CardLink, pupil: Pupil | None,
                   template: SunTemplate) -> str:
    uid = _identify(link)
    version = personalised.target_version(session, uid, keyring)
    keys_for = _keys_for(keyring, uid, max(version, keyring.newest))
    outcome = personalise(Ntag424(link), uid, keys_for=keys_for, version=version,
                          template=template)
    if outcome.sun_url is None:
        raise UnknownKeys("the card sent no SUN message after personalising")
    tap = personalised.check_first_message(keyring, uid, version, outcome.sun_url)
    card = personalised.record(session=session, uid=uid, tap=tap, pupil=pupil)
    linked = f", linked to {pupil.full_name}" if pupil and card else ""
    changed = "; ".join(outcome.steps)
    return (f"{masked_uid(uid)}: personalised, key version {version} ({changed}); "
            f"first message genuine (counter {tap.counter}){linked}")


@app.command("provision")
def provision(
    device: str = typer.Option("pcsc", "--device", help="pcsc or pcsc:NAME"),
    pupil_ref: str | None = typer.Option(None, "--pupil", help="Link the card to this pupil"
                                         " (their reference in the school's register)."),
    school: str | None = typer.Option(None, "--school", help="The pupil's school (slug)."),
    batch: bool = typer.Option(False, "--batch", help="Card after card, until none comes."),
    count: int | None = typer.Option(None, "--count", min=1, help="Stop after N cards."),
    wait: float = typer.Option(30.0, "--wait", min=0.1, help="Seconds to wait for a card."),
    base_url: str | None = typer.Option(None, "--base-url",
                                        help="The URL cards point to (default: settings)."),
) -> None:
    """Personalise blank NTAG 424 DNA cards: URL template, SDM, five diversified keys,
    then check the card's first SUN message; one line per card."""
    if batch == (pupil_ref is not None):
        context.fail("say which: --pupil REF for one pupil's card, or --batch for a box")
    settings = context.load_settings()
    base = (base_url or settings.public_url or "https://moulin.example").rstrip("/") + "/sun"
    template, keyring = SunTemplate.for_base(base), _keyring()
    refused = 0
    with context.database(settings) as engine, Session(engine) as session, \
            _cards(device, wait, count if batch else 1) as cards:
        pupil = _pupil(session, pupil_ref, school)
        context.console.print("Place a card on the reader…", highlight=False)
        for link in cards:
            try:
                line = _provision_one(session, keyring, link, pupil, template)
            except (HardwareError, CardPayError, ValueError) as exc:
                session.rollback()
                refused += 1
                hint = " Place it again to finish." if isinstance(exc, CardRemoved) else ""
                line = f"{link.reader}: refused: {exc}.{hint}"
            context.console.print(line, highlight=False, soft_wrap=True)
    if refused:
        raise typer.Exit(1)


@app.command("reset")
def reset(
    device: str = typer.Option("pcsc", "--device", help="pcsc or pcsc:NAME"),
    wait: float = typer.Option(30.0, "--wait", min=0.1, help="Seconds to wait for a card."),
) -> None:
    """Give a card back its factory keys (all zero, version 0) and switch SDM off, so it can
    be personalised again; the card's record is retired, its history stays with its pupil."""
    settings = context.load_settings()
    keyring = _keyring()
    with context.database(settings) as engine, Session(engine) as session, \
            _cards(device, wait, 1) as cards:
        context.console.print("Place the card on the reader…", highlight=False)
        for link in cards:
            try:
                uid = _identify(link)
                highest = max(keyring.newest, personalised.stored_version(session, uid) or 0)
                reset_to_factory(Ntag424(link), uid, keys_for=_keys_for(keyring, uid, highest))
                personalised.record_returned(session=session, uid=uid)
            except (HardwareError, CardPayError) as exc:
                session.rollback()
                context.fail(f"{link.reader}: not reset: {exc}")
            context.console.print(f"{masked_uid(uid)}: factory keys again (version 0), SDM off",
                                  highlight=False, soft_wrap=True)
