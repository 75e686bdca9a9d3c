"""Amounts typed by people become int cents, or a clear refusal; cents read well."""

from __future__ import annotations

import pytest

from cardpay.errors import InvalidAmountError
from cardpay.money import decimal_string, format_cents, parse_amount


@pytest.mark.parametrize(("text", "cents"), [
    ("12", 1200), ("12.5", 1250), ("12,50", 1250), (" 12,50 € ", 1250), ("0.01", 1),
    ("€7", 700), ("1999.99", 199999),
])
def test_plain_amounts_parse_to_cents(text: str, cents: int) -> None:
    assert parse_amount(text, max_cents=200_000) == cents


@pytest.mark.parametrize(("text", "code"), [
    ("", "amount.missing"), ("   ", "amount.missing"), ("-5", "amount.format"),
    ("12.345", "amount.format"), ("1e3", "amount.format"), ("NaN", "amount.format"),
    ("1,234.50", "amount.format"), ("12.", "amount.format"), ("douze", "amount.format"),
    ("0", "amount.too_small"), ("0,00", "amount.too_small"),
    ("2000.01", "amount.too_large"), ("99999999", "amount.format"),
])
def test_anything_else_is_refused_with_a_reason(text: str, code: str) -> None:
    with pytest.raises(InvalidAmountError) as caught:
        parse_amount(text, max_cents=200_000)
    assert caught.value.code == code


def test_a_float_is_never_an_amount() -> None:
    with pytest.raises(InvalidAmountError):
        parse_amount(12.5, max_cents=200_000)


def test_zero_may_be_allowed() -> None:
    assert parse_amount("0", max_cents=100, min_cents=0) == 0


@pytest.mark.parametrize(("cents", "fr", "en"), [
    (1250, "12,50\u00a0€", "€12.50"),
    (5, "0,05\u00a0€", "€0.05"),
    (-350, "\u22123,50\u00a0€", "\u2212€3.50"),
    (123456, "1\u00a0234,56\u00a0€", "€1,234.56"),
])
def test_amounts_read_as_each_language_writes_them(cents: int, fr: str, en: str) -> None:
    assert format_cents(cents, "fr") == fr
    assert format_cents(cents, "en") == en


def test_csv_amounts_are_decimal_strings() -> None:
    assert [decimal_string(c) for c in (1250, 5, -305, 0)] == ["12.50", "0.05", "-3.05", "0.00"]
    with pytest.raises(TypeError):
        decimal_string(12.5)  # type: ignore[arg-type]
