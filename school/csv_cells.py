"""Writing CSV files that a spreadsheet opens without running anything in them.

A cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is read as a
formula by Excel, LibreOffice and Google Sheets (OWASP, 'CSV Injection'). Every CSV this
project writes goes through `csv_text`, which prefixes such text cells with a single
quote, so they show as the text they are.

Numbers are not text: an `int` or a `Decimal` cell is written as is, so a refund of
`-3.50` stays a number a spreadsheet can add up. Only values that the code itself made
numbers get that treatment; anything a person typed (a memo, a class name) is a `str`
and is neutralised, even when it looks like a number.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from decimal import Decimal

Cell = str | int | Decimal | None
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Cell) -> Cell:
    """The value to write: text that a spreadsheet would run gets a leading quote."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    if isinstance(value, bool):
        raise TypeError("write a boolean as text")
    return value


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> str:
    """A CSV file (header row first) with every cell passed through `safe_cell`."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([safe_cell(h) for h in header])
    writer.writerows([safe_cell(c) for c in row] for row in rows)
    return out.getvalue()
