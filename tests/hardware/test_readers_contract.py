"""One contract for every reader driver, run against the real stack of each: pyscard →
pcscd → vpcd → the virtual card, and nfcpy → its udp driver → the tag emulator."""

from __future__ import annotations

import threading
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

from firmware_mocks.cards import Kind
from firmware_mocks.vpcd_card import VirtualCard
from hardware.errors import CardProtocolError, CardRemoved, ReaderUnavailable
from hardware.readers import CardKind, CardRead, open_reader
from tests.hardware.pcscd import Pcscd
from tests.hardware.rigs import EXPECTED_KIND, UIDS, PcscRig, Rig

WAIT = 10.0  # pcscd notices a vpcd card within 400 ms; be generous on a loaded machine


def read_one(rig: Rig, card: object, accepted: bool = True) -> CardRead:
    running = rig.tap(card)
    read = rig.reader.wait_for_card(WAIT)
    rig.reader.feedback(accepted)
    running.result(WAIT)
    assert read is not None, "no card seen"
    return read


def test_reads_the_uid_and_tells_the_kind_of_each_card(rig: Rig) -> None:
    for kind in rig.kinds:
        read = read_one(rig, rig.card(kind))
        assert (read.uid, read.kind) == (UIDS[kind], EXPECTED_KIND[kind])


def _check_sun(url: str, uid: bytes) -> int:
    """An independent check of a SUN URL (all keys zero): returns the read counter."""
    query = parse_qs(urlsplit(url).query)
    decryptor = Cipher(algorithms.AES(bytes(16)), modes.CBC(bytes(16))).decryptor()
    plain = decryptor.update(bytes.fromhex(query["picc_data"][0])) + decryptor.finalize()
    assert (plain[0], plain[1:8]) == (0xC7, uid)
    counter = int.from_bytes(plain[8:11], "little")
    session = CMAC(algorithms.AES(bytes(16)))
    session.update(bytes.fromhex("3CC300010080") + uid + plain[8:11])
    mac = CMAC(algorithms.AES(session.finalize()))
    assert mac.finalize()[1::2].hex().upper() == query["cmac"][0]
    return counter


def test_a_card_pulled_away_mid_read_raises_card_removed_then_the_next_tap_works(
    rig: Rig,
) -> None:
    kind = rig.kinds[-1]
    card = rig.card(kind)
    rig.fault(card, "vanish")
    running = rig.tap(card)
    with pytest.raises(CardRemoved):
        rig.reader.wait_for_card(WAIT)
    running.result(WAIT)
    assert read_one(rig, card).uid == UIDS[kind]


def test_a_garbled_answer_after_the_uid_still_gives_the_tap_then_the_next_tap_works(
    rig: Rig,
) -> None:
    """Once the UID is read, an odd answer to a later probe does not lose the tap: it is
    a UID card read, and the server decides (the fault lands after each kind's UID)."""
    kind = rig.kinds[-1]
    card = rig.card(kind)
    rig.fault(card, "garbage")
    running = rig.tap(card, hold_ms=3000, until_feedback=False)
    read = rig.reader.wait_for_card(WAIT)
    running.result(WAIT)
    assert read is not None
    assert (read.uid, read.kind, read.sun_url) == (UIDS[kind], CardKind.UNKNOWN, None)
    assert read_one(rig, card).kind is EXPECTED_KIND[kind]


def test_a_card_left_on_the_reader_is_reported_once(rig: Rig) -> None:
    card = rig.card(rig.kinds[0])
    running = rig.tap(card, hold_ms=2500, until_feedback=False)
    assert rig.reader.wait_for_card(WAIT) is not None
    rig.reader.feedback(True)
    assert rig.reader.wait_for_card(1.0) is None
    running.result(WAIT)


def test_waiting_without_a_card_times_out_without_spinning(rig: Rig) -> None:
    cpu, started = time.process_time(), time.monotonic()
    assert rig.reader.wait_for_card(1.5) is None
    # It waited (1.5 s), and came back: how late depends on the machine's load, so the
    # bound is loose; spinning shows in the CPU time, which load does not inflate.
    assert 1.4 <= time.monotonic() - started < 1.5 + 10
    assert time.process_time() - cpu < 0.5


def test_close_wakes_a_waiting_thread(rig: Rig) -> None:
    results: list[CardRead | None] = []
    waiter = threading.Thread(target=lambda: results.append(rig.reader.wait_for_card(30)))
    waiter.start()
    time.sleep(0.5)
    rig.reader.close()
    waiter.join(5)
    assert not waiter.is_alive()
    assert results == [None]


def test_pcsc_a_garbled_uid_raises_card_protocol_error(pcsc_rig: PcscRig) -> None:
    card = pcsc_rig.card(Kind.MIFARE_CLASSIC_1K)
    pcsc_rig.fault(card, "garbage")  # on the UID command itself: nothing to send
    running = pcsc_rig.tap(card, hold_ms=3000, until_feedback=False)
    with pytest.raises(CardProtocolError):
        pcsc_rig.reader.wait_for_card(WAIT)
    running.result(WAIT)
    assert read_one(pcsc_rig, card).uid == UIDS[Kind.MIFARE_CLASSIC_1K]


@pytest.mark.parametrize(("kind", "probe"), [(Kind.NTAG215, "FF000000"),
                                             (Kind.NTAG424_DNA, "9060")])
def test_pcsc_a_card_that_does_not_know_get_version_is_read_as_a_uid_card(
    pcsc_rig: PcscRig, kind: Kind, probe: str,
) -> None:
    """A card that answers its UID and then 6D00 (instruction not supported) to
    GET_VERSION: the tap is a UID card read, not 'no tap recorded'."""
    from firmware_mocks.cards import Fault

    card = pcsc_rig.card(kind)
    card.inject(Fault("status", on=bytes.fromhex(probe), sw=bytes.fromhex("6D00")))
    read = read_one(pcsc_rig, card)
    assert (read.uid, read.kind, read.sun_url) == (UIDS[kind], CardKind.UNKNOWN, None)


# PC/SC only: the tag emulator for nfcpy speaks Type 2 only so far (no NTAG 424 DNA);
# LED/buzzer commands reach the virtual card; pcscd can go away.


def test_pcsc_ntag424_gives_a_fresh_sun_url_on_each_tap(pcsc_rig: PcscRig) -> None:
    card = pcsc_rig.card(Kind.NTAG424_DNA)
    first, second = read_one(pcsc_rig, card), read_one(pcsc_rig, card)
    assert first.sun_url is not None
    assert second.sun_url is not None
    counters = [_check_sun(r.sun_url, UIDS[Kind.NTAG424_DNA]) for r in (first, second)]
    assert counters[1] == counters[0] + 1


@pytest.mark.parametrize(
    ("accepted", "red", "green", "beeps"), [(True, False, True, 1), (False, True, False, 2)]
)
def test_pcsc_feedback_reaches_the_card(
    pcsc_rig: PcscRig, accepted: bool, red: bool, green: bool, beeps: int
) -> None:
    card = pcsc_rig.card(Kind.NTAG424_DNA)
    read_one(pcsc_rig, card, accepted=accepted)
    [seen] = card.feedback
    assert (seen.red, seen.green, seen.beeps) == (red, green, beeps)


def test_pcsc_reader_unavailable_while_pcscd_is_down_then_recovers(pcsc_rig: PcscRig) -> None:
    card = pcsc_rig.card(Kind.MIFARE_CLASSIC_1K)
    read_one(pcsc_rig, card)
    pcsc_rig.pcscd.stop()
    try:
        with pytest.raises(ReaderUnavailable):
            pcsc_rig.reader.wait_for_card(1.0)
    finally:
        pcsc_rig.pcscd.start()
    assert read_one(pcsc_rig, card).kind is CardKind.MIFARE_CLASSIC_1K


def test_pcsc_a_wait_survives_a_pcscd_restart(pcsc_rig: PcscRig) -> None:
    card: VirtualCard = pcsc_rig.card(Kind.NTAG215)
    taps = []

    def restart_then_tap() -> None:
        time.sleep(0.5)
        pcsc_rig.pcscd.restart()
        taps.append(pcsc_rig.tap(card))

    helper = threading.Thread(target=restart_then_tap)
    helper.start()
    read = pcsc_rig.reader.wait_for_card(30)
    pcsc_rig.reader.feedback(True)
    helper.join(30)
    taps[0].result(WAIT)
    assert read is not None
    assert read.kind is CardKind.NTAG215


def test_pcsc_a_missing_reader_is_reported_without_spinning(pcscd: Pcscd) -> None:
    reader = open_reader("pcsc:No Such Reader")
    try:
        cpu = time.process_time()
        with pytest.raises(ReaderUnavailable, match="No Such Reader"):
            reader.wait_for_card(1.5)
        assert time.process_time() - cpu < 0.5
    finally:
        reader.close()
