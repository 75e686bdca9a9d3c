"""Imports every package's tables, so that metadata-wide operations see them all."""

import school.models  # noqa: F401
