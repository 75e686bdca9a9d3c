"""Errors raised by the shared records.

SchoolError
├── NotFound            a record asked for does not exist
├── Conflict            a write would break a uniqueness rule
├── InvalidInput        a value a person typed or a file held is not acceptable
└── ImportRejected      a pupil file has bad rows; nothing was written
"""

from __future__ import annotations

from dataclasses import dataclass


class SchoolError(Exception):
    """Base of every error raised by `school`."""


class NotFound(SchoolError):
    pass


class Conflict(SchoolError):
    pass


class InvalidInput(SchoolError):
    pass


@dataclass(frozen=True)
class RowProblem:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


class ImportRejected(SchoolError):
    def __init__(self, problems: list[RowProblem]) -> None:
        self.problems = problems
        super().__init__(f"{len(problems)} bad row(s); nothing was imported")
