"""Errors raised by the webcam package.

WebcamError
├── UnknownCamera   no capture worker runs for that camera id
├── AccessRefused   the policy says no, for a reason that no card can stand in for
└── EncodeFailed    OpenCV could not encode a frame
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from webcam.policy import Decision


class WebcamError(Exception):
    """Base of every error raised by `webcam`."""


class UnknownCamera(WebcamError):
    pass


class AccessRefused(WebcamError):
    def __init__(self, decision: Decision) -> None:
        super().__init__(f"access refused: {decision.reason.value}")
        self.decision = decision


class EncodeFailed(WebcamError):
    pass
