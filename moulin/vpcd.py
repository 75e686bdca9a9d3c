"""A private pcscd with only the vpcd driver, for the demo and the benchmark: a 'Virtual
PCD' reader on which `firmware_mocks.vpcd_card` puts virtual cards over TCP.

pcscd always uses /run/pcscd, so only one can run per machine: `problem()` says why one
cannot be started here (not installed, or another one running), and the caller falls
back to something else rather than disturb a pcscd it does not own.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
PID_FILE = Path("/run/pcscd/pcscd.pid")
READER = "Virtual PCD 00 00"


class PcscdUnavailable(RuntimeError):
    pass


def _binary() -> str | None:
    return shutil.which("pcscd") or shutil.which("pcscd", path="/usr/sbin:/sbin")


def other_pcscd() -> int | None:
    """The pid of a pcscd already running on this machine, if any."""
    try:
        pid = int(PID_FILE.read_text().replace("\x00", "").strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def problem() -> str | None:
    """Why a private pcscd cannot run here, or None when it can."""
    if _binary() is None or not VPCD_DRIVER.exists():
        return "pcscd or the vsmartcard-vpcd driver is not installed"
    pid = other_pcscd()
    if pid is not None:
        return f"another pcscd (pid {pid}) is already running"
    return None


def _free_port_pair() -> int:
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port < 65000 and all(_free(p) for p in (port, port + 1)):
            return port  # vpcd listens on two ports: one per virtual reader
    raise PcscdUnavailable("no two free consecutive TCP ports for vpcd")


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class PrivatePcscd:
    """pcscd in the foreground with a reader.conf.d of its own; stop() ends it."""

    def __init__(self) -> None:
        binary = _binary()
        if binary is None or not VPCD_DRIVER.exists():
            raise PcscdUnavailable("pcscd or the vsmartcard-vpcd driver is not installed")
        self.binary = binary
        self.root = Path(tempfile.mkdtemp(prefix="moulin-pcscd-"))
        self.port = _free_port_pair()
        conf = self.root / "reader.conf.d"
        conf.mkdir()
        (conf / "vpcd").write_text(
            'FRIENDLYNAME "Virtual PCD"\n'
            f"DEVICENAME   /dev/null:0x{self.port:04X}\n"
            f"LIBPATH      {VPCD_DRIVER}\n"
            f"CHANNELID    0x{self.port:04X}\n"
        )
        self.conf = conf
        self.log = self.root / "pcscd.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> None:
        reason = problem()
        if reason:
            raise PcscdUnavailable(reason)
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(  # noqa: S603 - our own fixed arguments
                [self.binary, "--foreground", "--error", "-c", str(self.conf)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            self._wait_for_reader(timeout)
        except PcscdUnavailable:
            self.stop()
            raise

    def _wait_for_reader(self, timeout: float) -> None:
        from smartcard import scard

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise PcscdUnavailable(f"pcscd exited: {self.log.read_text()[-500:]}")
            hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
            if hresult == scard.SCARD_S_SUCCESS:
                hresult, readers = scard.SCardListReaders(context, [])
                scard.SCardReleaseContext(context)
                if hresult == scard.SCARD_S_SUCCESS and READER in readers:
                    return
            time.sleep(0.05)
        raise PcscdUnavailable(f"pcscd did not show {READER!r} within {timeout} s")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(10)
            self._process = None
        shutil.rmtree(self.root, ignore_errors=True)
