"""Errors raised by `cardpay`, each naming what went wrong in words staff understand.

    CardPayError
    ├── LedgerError
    │   ├── InvalidTransactionError   legs that do not sum to zero, a zero or non-integer
    │   │                             amount, an account of another school
    │   ├── InsufficientFundsError    a debit would take an account below its floor
    │   ├── IdempotencyConflictError  a client id already used for a different transaction
    │   └── NotReversibleError        already reversed, or itself a reversal
    ├── TapError
    │   ├── TapConflictError         a tap id already used by another till
    │   └── TapRejectedError         a tap the server cannot accept as sent (a time in the
    │                                future, no card data)
    ├── CardError
    │   ├── InvalidUidError           not a 4, 7 or 10 byte UID in hex
    │   ├── UnknownCardError          no card with this UID
    │   │   └── UnknownGenuineCardError   a genuine NTAG 424 DNA (SUN checked) not issued here
    │   ├── CardUnavailableError      a UID that may not be linked to this pupil
    │   ├── CardStatusError           a status change the card's life does not allow
    │   ├── CardNotUsableError        a blocked, lost or retired card was tapped
    │   └── SunRefusedError           an NTAG 424 DNA message that proves nothing
    │       ├── SunMalformedError     wrong length, not hex, or undecryptable PICCData
    │       ├── SunForgedError        the CMAC does not match: a forgery or a wrong key
    │       └── SunReplayedError      a read counter not greater than the last one seen
    └── MoneyInputError               what a person typed on a money form; its `code`
        │                             names the message the page shows
        ├── InvalidAmountError        not a positive amount of at most two decimals, or
        │                             outside the form's bounds
        ├── ReasonRequiredError       a refund, correction or reversal without a reason
        ├── AccountClosedError        a top-up to the account of a pupil who has left
        └── LeavingError              a leaving form that cannot be carried out as asked
                                      (a debt to settle first, no sibling to transfer to)
"""

from __future__ import annotations


class CardPayError(Exception):
    """Base of every error raised by `cardpay`."""


class LedgerError(CardPayError):
    pass


class InvalidTransactionError(LedgerError):
    pass


class InsufficientFundsError(LedgerError):
    def __init__(self, account_id: int, balance_cents: int, floor_cents: int,
                 amount_cents: int) -> None:
        self.account_id = account_id
        self.balance_cents = balance_cents
        self.floor_cents = floor_cents
        self.amount_cents = amount_cents
        super().__init__(
            f"account {account_id}: a debit of {-amount_cents} cents would take the balance "
            f"of {balance_cents} cents below its floor of {floor_cents} cents"
        )


class IdempotencyConflictError(LedgerError):
    pass


class NotReversibleError(LedgerError):
    pass


class CardError(CardPayError):
    pass


class InvalidUidError(CardError):
    pass


class UnknownCardError(CardError):
    pass


class UnknownGenuineCardError(UnknownCardError):
    """Carries the UID the card proved with its SUN, so it can be enrolled as secure."""

    def __init__(self, message: str, uid: bytes) -> None:
        self.uid = uid
        super().__init__(message)


class CardUnavailableError(CardError):
    pass


class CardStatusError(CardError):
    pass


class CardNotUsableError(CardError):
    def __init__(self, card_id: int, status: str) -> None:
        self.card_id = card_id
        self.status = status
        super().__init__(f"this card is {status}: keep it and call the office")


class SunRefusedError(CardError):
    pass


class SunMalformedError(SunRefusedError):
    pass


class SunForgedError(SunRefusedError):
    pass


class SunReplayedError(SunRefusedError):
    pass


class TapError(CardPayError):
    pass


class TapConflictError(TapError):
    pass


class TapRejectedError(TapError):
    pass


class MoneyInputError(CardPayError):
    def __init__(self, code: str, detail: str) -> None:
        self.code = code
        super().__init__(detail)


class InvalidAmountError(MoneyInputError):
    pass


class ReasonRequiredError(MoneyInputError):
    pass


class AccountClosedError(MoneyInputError):
    """The pupil has left and the account is closed: no meal, no top-up."""

    def __init__(self, detail: str = "the account is closed: the pupil has left") -> None:
        super().__init__("account.closed", detail)


class LeavingError(MoneyInputError):
    pass
