"""Amounts at the edges: parse what people type into integer cents, format cents for them.

Parsing goes through `Decimal` and refuses anything that is not a plain, positive amount
with at most two decimals: '12', '12.5', '12,50' and '12,50 €' are 1250 cents; '1e3',
'-5', '12.345', '1,234.50' and floats are refused. Formatting follows the reader's
language: French '1 234,50 €', English '€1,234.50'. CSV files get '1234.50'.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from cardpay.errors import InvalidAmountError

CURRENCY_SYMBOLS = {"EUR": "€", "GBP": "£", "USD": "$", "CHF": "CHF"}
NBSP = "\u00a0"
MINUS = "\u2212"
_AMOUNT = re.compile(r"^\d{1,7}(?:[.,]\d{1,2})?$")


def parse_amount(text: object, *, max_cents: int, min_cents: int = 1) -> int:
    """Integer cents from what a person typed; InvalidAmountError with a `code` for the
    page to translate: 'amount.missing', 'amount.format', 'amount.too_small',
    'amount.too_large'."""
    if isinstance(text, float):
        raise InvalidAmountError("amount.format", "a float is never an amount of money")
    raw = str(text if text is not None else "").strip()
    for symbol in ("€", "EUR", "eur"):
        raw = raw.removesuffix(symbol).removeprefix(symbol).strip()
    if not raw:
        raise InvalidAmountError("amount.missing", "no amount given")
    if not _AMOUNT.match(raw):
        raise InvalidAmountError("amount.format", f"not an amount: {raw[:20]!r}")
    try:
        cents = Decimal(raw.replace(",", ".")) * 100
    except InvalidOperation as exc:  # the pattern should have caught it
        raise InvalidAmountError("amount.format", "not an amount") from exc
    value = int(cents)
    if value < min_cents:
        raise InvalidAmountError("amount.too_small", f"{value} cents is below {min_cents}")
    if value > max_cents:
        raise InvalidAmountError("amount.too_large", f"{value} cents is above {max_cents}")
    return value


def decimal_string(cents: int) -> str:
    """'1234.50', '-3.05': for CSV files and machine-readable text, never a float."""
    _check(cents)
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}{whole}.{part:02d}"


def _group(whole: int, separator: str) -> str:
    return f"{whole:,}".replace(",", separator)


def format_cents(cents: int, locale: str, currency: str = "EUR") -> str:
    """An amount as people read it in `locale` ('fr' or 'en')."""
    _check(cents)
    symbol = CURRENCY_SYMBOLS.get(currency.upper(), currency.upper())
    sign = MINUS if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    if locale == "fr":
        return f"{sign}{_group(whole, NBSP)},{part:02d}{NBSP}{symbol}"
    spacer = NBSP if len(symbol) > 1 else ""
    return f"{sign}{symbol}{spacer}{_group(whole, ',')}.{part:02d}"


def _check(cents: int) -> None:
    if type(cents) is not int:
        raise TypeError(f"amounts are int cents, not {type(cents).__name__}")
