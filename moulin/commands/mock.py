"""`moulin mock …`: the far side of a wire, for trying a till without hardware.

`moulin mock card` puts a virtual card on pcscd's vpcd reader, serves the reader's
commands for `--hold-ms`, then takes it away, and says what the till showed it;
`moulin mock camera` serves a synthetic classroom as MJPEG (moulin.commands.mock_camera).
"""

from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from moulin import context
from moulin.commands import mock_camera

if TYPE_CHECKING:
    from firmware_mocks.ntag424_chip import Chip

app = typer.Typer(help="Virtual devices for trying Moulin without hardware.", no_args_is_help=True)
app.command("camera")(mock_camera.camera)


class MockKind(enum.StrEnum):
    CLASSIC = "classic"
    NTAG215 = "ntag215"
    NTAG424 = "ntag424"
    NTAG424_BLANK = "ntag424-blank"


def ntag424_keys(master_key: bytes, uid: bytes) -> tuple[bytes, bytes]:
    """The (meta read, file read) keys a card provisioned by this deployment holds."""
    from cardpay.sun import Keyring

    keyring = Keyring(master_key)
    return keyring.meta_read, keyring.file_read(uid)


def _chip_file(uid: bytes) -> Path:
    return context.load_settings().data_dir / "mock-ntag424" / f"{uid.hex().upper()}.json"


def _load_chip(uid: bytes, fresh: bool) -> Chip:
    """The card as the last tap left it (personalised, say), or a blank one."""
    from firmware_mocks.ntag424_chip import Chip

    path = _chip_file(uid)
    if not fresh and path.exists():
        try:
            return Chip.load(json.loads(path.read_text()))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            context.fail(f"cannot read the saved card {path}: {exc}; use --fresh")
    return Chip(uid=uid)


def _save_chip(chip: Chip) -> None:
    path = _chip_file(chip.uid)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(chip.dump(), indent=1))


def default_vpcd_port() -> int:
    """The port of the demo's private pcscd when `moulin demo` runs, else vpcd's own."""
    try:
        return int((context.load_settings().data_dir / "vpcd-port").read_text())
    except (OSError, ValueError):
        return 35963


def _counters_file() -> Path:
    return context.load_settings().data_dir / "mock-card-counters.json"


def _load_counter(uid: str) -> int:
    try:
        return int(json.loads(_counters_file().read_text()).get(uid, 0))
    except (OSError, ValueError, AttributeError):
        return 0


def _save_counter(uid: str, counter: int) -> None:
    path = _counters_file()
    try:
        counters = json.loads(path.read_text())
    except (OSError, ValueError):
        counters = {}
    counters[uid] = counter
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(counters, indent=1))


@app.command("card")
def card(
    kind: MockKind = typer.Option(..., "--kind", help="What card to be."),
    uid: str = typer.Option(..., "--uid", help="The UID in hex (4 or 7 bytes; 7 for NTAG)."),
    hold_ms: int | None = typer.Option(
        None, "--hold-ms", min=1,
        help="How long the card stays (1500 ms; 8000 ms for a blank card to personalise).",
    ),
    port: int | None = typer.Option(
        None, "--port", help="vpcd's TCP port (the running demo's, else 35963)."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Where pcscd with vpcd runs."),
    master_key: str | None = typer.Option(
        None, "--master-key", help="NTAG 424: the card master key in hex (default: settings)."
    ),
    counter: int | None = typer.Option(
        None, "--counter", min=0, help="NTAG 424: the read counter before this tap."
    ),
    fresh: bool = typer.Option(
        False, "--fresh", help="ntag424-blank: start from a factory-new card again."
    ),
) -> None:
    """Tap a virtual card on the vpcd reader: hold it, then take it away.

    `ntag424-blank` is an NTAG 424 DNA with the chip's own keys and secure messaging,
    blank at first; what `moulin card provision` writes to it is kept for its next taps
    (in the data folder, mock-ntag424/)."""
    from firmware_mocks.cards import Kind
    from firmware_mocks.vpcd_card import VirtualCard

    try:
        raw_uid = bytes.fromhex(uid.replace(":", ""))
    except ValueError:
        context.fail("--uid must be hex, e.g. 04A1B2C3D4E5F6")
    card_kind = {
        MockKind.CLASSIC: Kind.MIFARE_CLASSIC_1K,
        MockKind.NTAG215: Kind.NTAG215,
        MockKind.NTAG424: Kind.NTAG424_DNA,
        MockKind.NTAG424_BLANK: Kind.NTAG424_DNA,
    }[kind]
    port = port if port is not None else default_vpcd_port()
    blank = kind is MockKind.NTAG424_BLANK
    hold_ms = hold_ms or (8000 if blank else 1500)
    chip = _load_chip(raw_uid, fresh) if blank and len(raw_uid) == 7 else None
    if blank and chip is None:
        context.fail("an NTAG 424 DNA has a 7-byte UID")
    meta_key = file_key = bytes(16)
    start = 0
    if kind is MockKind.NTAG424:
        secret = bytes.fromhex(master_key) if master_key else None
        master = secret or context.load_settings().effective_card_master_key()
        meta_key, file_key = ntag424_keys(master, raw_uid)
        start = _load_counter(raw_uid.hex()) if counter is None else counter
    try:
        virtual = VirtualCard(
            card_kind,
            raw_uid,
            host=host,
            port=port,
            counter=start,
            meta_key=meta_key,
            file_key=file_key,
            chip=chip,
        )
    except ValueError as exc:
        context.fail(str(exc))
    try:
        result = virtual.tap(hold_ms, connect_timeout=3.0)
    except OSError as exc:
        context.fail(
            f"cannot reach vpcd at {host}:{port} ({exc.strerror or exc}): is pcscd running?"
        )
    if kind is MockKind.NTAG424:
        _save_counter(raw_uid.hex(), virtual.counter)
    if chip is not None:
        _save_chip(chip)
        context.console.print(
            f"ntag424-blank {uid}: key versions {chip.versions}, "
            f"SDM {'on' if chip.files[2].sdm else 'off'}, read counter {chip.sdm_counter}, "
            f"failed authentications {chip.failed_authentications}",
            highlight=False,
            soft_wrap=True,
        )
    seen = virtual.feedback
    shown = ", ".join(
        f"{'green' if f.green else 'red' if f.red else 'no light'} + {f.beeps} beep(s)"
        for f in seen
    )
    context.console.print(
        f"{kind.value} {uid}: {len(result.apdus)} APDUs; reader showed: {shown or 'nothing'}",
        highlight=False,
    )
