"""`moulin mock …`: the far side of a wire, for trying a till without hardware.

`moulin mock card` puts a virtual card on pcscd's vpcd reader, serves the reader's
commands for `--hold-ms`, then takes it away, and says what the till showed it;
`moulin mock camera` serves a synthetic classroom as MJPEG (moulin.commands.mock_camera).
"""

from __future__ import annotations

import enum
import json
from pathlib import Path

import typer

from moulin import context
from moulin.commands import mock_camera

app = typer.Typer(help="Virtual devices for trying Moulin without hardware.", no_args_is_help=True)
app.command("camera")(mock_camera.camera)


class MockKind(enum.StrEnum):
    CLASSIC = "classic"
    NTAG215 = "ntag215"
    NTAG424 = "ntag424"


def ntag424_keys(master_key: bytes, uid: bytes) -> tuple[bytes, bytes]:
    """The (meta read, file read) keys a card provisioned by this deployment holds."""
    from cardpay.sun import Keyring

    keyring = Keyring(master_key)
    return keyring.meta_read, keyring.file_read(uid)


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
    hold_ms: int = typer.Option(1500, "--hold-ms", min=1, help="How long the card stays."),
    port: int = typer.Option(35963, "--port", help="vpcd's TCP port."),
    host: str = typer.Option("127.0.0.1", "--host", help="Where pcscd with vpcd runs."),
    master_key: str | None = typer.Option(
        None, "--master-key", help="NTAG 424: the card master key in hex (default: settings)."
    ),
    counter: int | None = typer.Option(
        None, "--counter", min=0, help="NTAG 424: the read counter before this tap."
    ),
) -> None:
    """Tap a virtual card on the vpcd reader: hold it, then take it away."""
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
    }[kind]
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
    seen = virtual.feedback
    shown = ", ".join(
        f"{'green' if f.green else 'red' if f.red else 'no light'} + {f.beeps} beep(s)"
        for f in seen
    )
    context.console.print(
        f"{kind.value} {uid}: {len(result.apdus)} APDUs; reader showed: {shown or 'nothing'}",
        highlight=False,
    )
