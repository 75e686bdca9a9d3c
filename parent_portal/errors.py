"""Errors raised by the web application, and the one place that turns errors into HTTP.

    PortalError
    ├── LoginRequired       no valid session: browsers go to the login page
    ├── Forbidden           signed in, but this page is not for this user
    ├── CsrfRejected        a form without a valid anti-forgery token
    ├── LoginThrottled      too many failed sign-ins; carries when to try again
    └── TotpEnrolmentRequired  staff who must use a second factor and have not set it up

School errors (`school.errors`), lunch-account errors (`cardpay.errors`) and payment errors
are mapped here too, so services never pick status codes.
"""

from __future__ import annotations

from datetime import datetime

from cardpay.errors import (
    CardPayError,
    CardStatusError,
    IdempotencyConflictError,
    InsufficientFundsError,
    MoneyInputError,
    NotReversibleError,
    TapConflictError,
    TapRejectedError,
)
from cardpay.payments.base import CheckoutFailed, PaymentError
from school.errors import Conflict, InvalidInput, NotFound, SchoolError


class PortalError(Exception):
    """Base of every error raised by `parent_portal`."""


class LoginRequired(PortalError):
    def __init__(self, next_url: str) -> None:
        self.next_url = next_url
        super().__init__("sign-in required")


class Forbidden(PortalError):
    pass


class CsrfRejected(PortalError):
    pass


class LoginThrottled(PortalError):
    def __init__(self, retry_at: datetime) -> None:
        self.retry_at = retry_at
        super().__init__(f"too many failed sign-ins; retry at {retry_at.isoformat()}")


class TotpEnrolmentRequired(PortalError):
    """Browsers go to the enrolment page; programs get 403."""


# The one table of HTTP status codes for our own and the shared records' errors.
STATUS_CODES: dict[type[Exception], int] = {
    NotFound: 404,
    InvalidInput: 400,
    Conflict: 409,
    Forbidden: 403,
    CsrfRejected: 403,
    LoginThrottled: 429,
    TotpEnrolmentRequired: 403,
    TapConflictError: 409,
    TapRejectedError: 422,
    MoneyInputError: 400,
    InsufficientFundsError: 409,
    IdempotencyConflictError: 409,
    NotReversibleError: 409,
    CardStatusError: 409,
    CheckoutFailed: 502,
    PaymentError: 400,
}


def status_for(exc: Exception) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_CODES:
            return STATUS_CODES[cls]
    if isinstance(exc, SchoolError | CardPayError):
        return 400
    return 500
