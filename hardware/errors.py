"""The exceptions every hardware driver raises, whatever library sits underneath.

Drivers convert library errors (pyscard's ``CardConnectionException`` and
``NoCardException``, nfcpy's ``CommunicationError`` …) into these at their boundary,
so code that uses a device never imports the device's library::

    HardwareError
    ├── ReaderUnavailable   the reader or its service (pcscd, the USB device) is gone
    ├── CardRemoved         the card left the field before the exchange finished
    ├── CardProtocolError   the card or reader answered something we cannot make sense of
    └── CameraError         (hardware.cameras.base) a camera cannot be opened or read
"""

from __future__ import annotations


class HardwareError(Exception):
    """Base class of every error raised by ``hardware``."""


class ReaderUnavailable(HardwareError):
    """The reader, or the service in front of it, cannot be reached; retry later."""


class CardRemoved(HardwareError):
    """The card was taken away mid-exchange; the next tap starts afresh."""


class CardProtocolError(HardwareError):
    """A malformed or unexpected answer from the card or the reader."""
