"""The portal's security headers: those of `school.web_headers`, which camera nodes send
too."""

from __future__ import annotations

from school.web_headers import (
    CONTENT_SECURITY_POLICY,
    HSTS,
    SecurityHeaders,
    content_security_policy,
)

__all__ = ["CONTENT_SECURITY_POLICY", "HSTS", "SecurityHeaders", "content_security_policy"]
