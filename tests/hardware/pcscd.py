"""A pcscd for the test run: started in the foreground with only the vpcd driver, on a
free TCP port, and stopped (or restarted, for fault tests) by the tests themselves.

pcscd 1.9.9 (Debian 12) has /run/pcscd compiled in, for its socket and its pid file (the
client library reads PCSCLITE_CSOCK_NAME, the daemon does not), so one pcscd per mount
namespace: `own_run_dir()` gives a test process its own empty /run/pcscd, and with it its
own pcscd, whatever the other xdist workers and test runs on the machine do."""

from __future__ import annotations

import ctypes
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from smartcard import scard

VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
RUN_DIR = Path("/run/pcscd")
PID_FILE = RUN_DIR / "pcscd.pid"
READER = "Virtual PCD 00 00"
HINT = "run `make test`, which installs pcscd and vsmartcard-vpcd"
_FREE_FOR = 3.0  # seconds without another pcscd before starting ours


_CLONE_NEWNS = 0x00020000  # <sched.h>
_private = False  # whether own_run_dir() succeeded in this process


class PcscdMissing(RuntimeError):
    pass


def own_run_dir() -> bool:
    """Put this process in a mount namespace of its own with an empty tmpfs on /run/pcscd.

    Call it from the main thread before the tests start threads: unshare(2) moves the
    calling thread, and the threads and processes it starts later (pcscd, servers,
    daemons) inherit the namespace; a thread started before keeps the machine's (an xdist
    worker's execnet thread, which never uses pcscd). Needs root (CAP_SYS_ADMIN); False,
    with nothing changed, where it is refused: the machine's /run/pcscd is shared then.
    """
    global _private
    if _private:
        return True
    if os.geteuid() != 0 or not sys.platform.startswith("linux"):
        return False
    RUN_DIR.mkdir(parents=True, exist_ok=True)  # the mount point, as pcscd's package makes
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(_CLONE_NEWNS) != 0:
        return False
    # Private first: / is usually a shared mount, and the tmpfs would show on the host.
    for cmd in (
        ["mount", "--make-rprivate", "/"],
        ["mount", "-t", "tmpfs", "-o", "mode=0755,size=4m", "moulin-pcscd", str(RUN_DIR)],
    ):
        if subprocess.run(cmd, capture_output=True, check=False).returncode != 0:
            return False  # still the machine's /run/pcscd, in a copy of its namespace
    _private = True
    return True


def _port_pair_free(port: int) -> bool:
    for p in (port, port + 1):  # vpcd opens two readers, on port and port + 1
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                return False
    return True


def _free_port_pair() -> int:
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port < 65000 and _port_pair_free(port):
            return port
    raise RuntimeError("no two free consecutive TCP ports for vpcd")


def _other_pcscd_running() -> int | None:
    try:
        pid = int(PID_FILE.read_text().replace("\x00", "").strip())  # pcscd writes a NUL
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


class Pcscd:
    def __init__(self) -> None:
        binary = shutil.which("pcscd") or shutil.which("pcscd", path="/usr/sbin:/sbin")
        if binary is None or not VPCD_DRIVER.exists():
            raise PcscdMissing(f"pcscd or the vpcd driver is not installed: {HINT}")
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
        self._started_once = False

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self, timeout: float = 20.0) -> None:
        # pcscd always uses /run/pcscd: one per machine. Another test run's may hold it
        # for a few minutes, so wait for it to go (never stop someone else's).
        # Free means free for a few seconds: another run's pcscd restart tests leave
        # /run/pcscd empty for a moment, and starting ours then would mix the two runs.
        patience = float(os.environ.get("MOULIN_TEST_PCSCD_WAIT", "300"))
        deadline = time.monotonic() + patience
        # Not for a restart of our own, nor in our own /run/pcscd (nobody else's is there).
        free_for = 0.0 if self._started_once or _private else _FREE_FOR
        other, free_since = _other_pcscd_running(), time.monotonic()
        while time.monotonic() < deadline and (
            other is not None or time.monotonic() - free_since < free_for
        ):
            time.sleep(0.25)
            other = _other_pcscd_running()
            if other is not None:
                free_since = time.monotonic()
        if other is not None:
            raise PcscdMissing(
                f"another pcscd (pid {other}) is running; the tests need their own: stop it "
                "(systemctl disable --now pcscd.socket pcscd) or run `make test` (as root, "
                "each test process gets a /run/pcscd of its own; without root, run the "
                "pcscd tests in one process: -n 0)"
            )
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                [self.binary, "--foreground", "--error", "-c", str(self.conf)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._started_once = True
        self._wait_for_reader(timeout)

    def _wait_for_reader(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(f"pcscd exited: {self.log.read_text()[-2000:]}")
            hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
            if hresult == scard.SCARD_S_SUCCESS:
                hresult, readers = scard.SCardListReaders(context, [])
                scard.SCardReleaseContext(context)
                if hresult == scard.SCARD_S_SUCCESS and READER in readers:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"pcscd did not show {READER!r} within {timeout} s")

    def wait_until_empty(self, timeout: float = 5.0) -> None:
        """Until pcscd has noticed that the last virtual card left (it polls every 400 ms)."""
        hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        assert hresult == scard.SCARD_S_SUCCESS
        try:
            state = scard.SCARD_STATE_UNAWARE
            deadline = time.monotonic() + timeout
            while (remaining := deadline - time.monotonic()) > 0:
                hresult, states = scard.SCardGetStatusChange(
                    context, int(remaining * 1000), [(READER, state)]
                )
                state = states[0][1] & ~scard.SCARD_STATE_CHANGED
                if state & scard.SCARD_STATE_EMPTY:
                    return
            raise RuntimeError(f"a card stayed on {READER!r} for {timeout} s")
        finally:
            scard.SCardReleaseContext(context)

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(10)
        self._process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
