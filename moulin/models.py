"""Imports every package's tables, so that metadata-wide operations see them all."""

import cardpay.models  # noqa: F401
import school.auth_models  # the sign-in tables
import school.models  # noqa: F401
import webcam.models  # noqa: F401
