"""Camera addresses at rest: sealed with a key derived from the deployment's secret key.

A camera's URL often carries its password (`rtsp://admin:…@10.0.0.7/…`). It is stored
only as a Fernet token (AES-128-CBC and HMAC-SHA256), so a copied database or backup does
not hand out the cameras; only a process holding `MOULIN_SECRET_KEY` can open them.
Changing the secret key therefore means entering the camera addresses again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken

from webcam.errors import WebcamError

_PURPOSE = b"moulin/webcam/camera-source/v1"


class SourceUnreadable(WebcamError):
    """The sealed address was written with another secret key, or altered."""


def _fernet(secret_key: str) -> Fernet:
    key = hmac.new(secret_key.encode(), _PURPOSE, hashlib.sha256).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def seal(source: str, secret_key: str) -> str:
    return _fernet(secret_key).encrypt(source.encode()).decode("ascii")


def unseal(sealed: str, secret_key: str) -> str:
    try:
        return _fernet(secret_key).decrypt(sealed.encode("ascii")).decode()
    except (InvalidToken, ValueError) as exc:
        raise SourceUnreadable("camera address sealed with another key, or altered") from exc
