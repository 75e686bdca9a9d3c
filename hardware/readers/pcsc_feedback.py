"""What a PC/SC reader model can do beyond plain APDUs, chosen from its name: how to
show a verdict on its LED and buzzer, and whether it relays raw Type 2 commands.

==================  =====================================  ===================
reader name         LED and buzzer                          raw Type 2 (``60``)
==================  =====================================  ===================
``ACR122``          ``FF 00 40`` pseudo-APDU, transmit;     ``FF 00 00 00 … D4 42``
                    escape (SCardControl 3500) if the
                    card already left
``Virtual PCD``     ``FF 00 40`` through transmit: the      ``FF 00 00 00 … D4 42``
                    virtual card records it
``ACR1252/1255``    escape ``E0 00 00 28/29`` (control)     no
anything else       nothing                                 no
==================  =====================================  ===================

Feedback never raises: a pupil who lifts the card early must not stop the till.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from smartcard import scard

from hardware.errors import HardwareError
from hardware.readers.pcsc_link import CardLink

logger = logging.getLogger(__name__)

ESCAPE = scard.SCARD_CTL_CODE(3500)
# ACR122U LED/buzzer (P2: b0 red, b1 green, b2/b3 update masks; T1, T2 in 100 ms units;
# REP repetitions; LINK 01 = beep during T1).
ACR122_ACCEPTED = bytes.fromhex("FF00400E0402010101")  # green on, red off, one beep
ACR122_REFUSED = bytes.fromhex("FF00400D0401010201")  # red on, green off, two beeps
ACR1252_LED_GREEN, ACR1252_LED_RED = 0x02, 0x01

OpenDirect = Callable[[], CardLink]


class Feedback(Protocol):
    def signal(self, card: CardLink | None, direct: OpenDirect, accepted: bool) -> None:
        """Show the verdict. ``card`` is None when the card has already left; ``direct``
        opens a connection to the reader itself, for escape commands."""
        ...


class NoFeedback:
    def signal(self, card: CardLink | None, direct: OpenDirect, accepted: bool) -> None:
        return None


@dataclass(frozen=True)
class Acr122Feedback:
    """The ``FF 00 40`` pseudo-APDU through the card, or the escape channel without one."""

    escape_fallback: bool

    def signal(self, card: CardLink | None, direct: OpenDirect, accepted: bool) -> None:
        command = ACR122_ACCEPTED if accepted else ACR122_REFUSED
        if card is not None:
            try:
                card.transmit(command)
                return
            except HardwareError as exc:
                logger.info("LED/buzzer through the card failed (%s)", exc)
        if self.escape_fallback:
            _escape(direct, [command])
        else:
            logger.info("no feedback shown: the card left before the verdict")


class Acr1252Feedback:
    """ACR1252U escape commands: LED state, then one or two buzzer pulses."""

    def signal(self, card: CardLink | None, direct: OpenDirect, accepted: bool) -> None:
        led = ACR1252_LED_GREEN if accepted else ACR1252_LED_RED
        beep = bytes([0xE0, 0x00, 0x00, 0x28, 0x01, 0x0A])  # 100 ms
        _escape(
            direct, [bytes([0xE0, 0x00, 0x00, 0x29, 0x01, led])] + [beep] * (1 if accepted else 2)
        )


def _escape(direct: OpenDirect, commands: list[bytes]) -> None:
    try:
        link = direct()
    except HardwareError as exc:
        logger.info("cannot reach the reader for LED/buzzer (%s)", exc)
        return
    try:
        for i, command in enumerate(commands):
            if i and command == commands[i - 1]:
                time.sleep(0.2)  # a gap between two beeps, or they sound as one
            link.control(ESCAPE, command)
    except HardwareError as exc:
        logger.info("reader escape command refused (%s); is the CCID escape enabled?", exc)
    finally:
        link.disconnect()


@dataclass(frozen=True)
class ReaderProfile:
    feedback: Feedback
    direct_transmit: bool


def profile_for(reader_name: str) -> ReaderProfile:
    """The abilities of a reader model, told from the name pcscd gives it."""
    if "ACR122" in reader_name:
        return ReaderProfile(Acr122Feedback(escape_fallback=True), direct_transmit=True)
    if reader_name.startswith("Virtual PCD"):
        return ReaderProfile(Acr122Feedback(escape_fallback=False), direct_transmit=True)
    if "ACR1252" in reader_name or "ACR1255" in reader_name:
        return ReaderProfile(Acr1252Feedback(), direct_transmit=False)
    return ReaderProfile(NoFeedback(), direct_transmit=False)
