"""Fixtures for the reader tests: one rig per reader driver, each pairing a driver with
the mock on the far side of its wire (the test run's own pcscd is in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.hardware.pcscd import Pcscd
from tests.hardware.rigs import NfcRig, PcscRig, Rig


@pytest.fixture
def pcsc_rig(pcscd: Pcscd) -> Iterator[PcscRig]:
    rig = PcscRig(pcscd)
    yield rig
    rig.close()


@pytest.fixture
def nfc_rig() -> Iterator[NfcRig]:
    rig = NfcRig()
    yield rig
    rig.close()


@pytest.fixture(params=["pcsc", "nfc"])
def rig(request: pytest.FixtureRequest) -> Rig:
    """Every reader driver in turn, with its mock."""
    fixture: Rig = request.getfixturevalue(f"{request.param}_rig")
    return fixture
