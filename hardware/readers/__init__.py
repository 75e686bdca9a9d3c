"""Card readers: choose a driver from a configuration string.

======================  =============================================
``pcsc``                the first PC/SC reader pcscd knows (pyscard)
``pcsc:NAME``           the PC/SC reader whose name contains NAME
``nfc:usb[:…]``         a USB reader driven by nfcpy (``usb:072f:2200`` …)
``nfc:udp:HOST:PORT``   nfcpy's simulated reader, for the tag emulator
======================  =============================================

Drivers are imported only when chosen, so a till with a PC/SC reader never needs
nfcpy's USB stack and the other way round.
"""

from __future__ import annotations

from hardware.readers.base import CardKind, CardRead, CardReader, masked_uid

__all__ = ["CardKind", "CardRead", "CardReader", "masked_uid", "open_reader"]


def open_reader(config: str) -> CardReader:
    """Open the reader described by ``config`` (see the module docstring)."""
    family, _, rest = config.partition(":")
    if family == "pcsc":
        from hardware.readers.pcsc import PcscReader

        return PcscReader(name_filter=rest or None)
    if family == "nfc" and (rest == "usb" or rest.startswith(("usb:", "udp:"))):
        from hardware.readers.nfc import NfcReader

        return NfcReader(path=rest)
    raise ValueError(
        f"unknown reader {config!r}: use pcsc, pcsc:NAME, nfc:usb[:…] or nfc:udp:HOST:PORT"
    )
