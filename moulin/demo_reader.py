"""The reader side of `moulin demo`: a private pcscd with vpcd (or nfcpy's udp emulator
when pcscd cannot run here), a reader daemon for the demo till, and the `DemoTapper`
behind `/demo/tap` that taps the demo pupils' virtual cards."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from cardpay.sun import Keyring
from moulin.demo_tills import DemoHolder, DemoTills
from parent_portal.routes.demo import DemoCard

logger = logging.getLogger(__name__)


class DemoTapper:
    """Taps the demo cards on the demo till's reader, one at a time, in the background."""

    def __init__(
        self, tills: DemoTills, master_key: bytes, *, vpcd_port: int | None, emulator: object | None
    ) -> None:
        from firmware_mocks.cards import CardState, Kind
        from firmware_mocks.vpcd_card import VirtualCard

        self.till_device_id = tills.till_id
        self.reader = "pcscd + vpcd" if vpcd_port else "nfcpy udp emulator (NTAG215 only)"
        self._emulator = emulator
        self._lock = threading.Lock()
        keyring = Keyring(master_key)
        self._cards: dict[str, tuple[DemoHolder, object]] = {}
        for holder in tills.holders:
            if vpcd_port is None and holder.secure:
                continue  # the udp emulator speaks Type 2 only
            if vpcd_port is None:
                self._cards[holder.key] = (holder, CardState(Kind.NTAG215, holder.uid))
                continue
            kind = Kind.NTAG424_DNA if holder.secure else Kind.MIFARE_CLASSIC_1K
            card = VirtualCard(
                kind,
                holder.uid,
                port=vpcd_port,
                counter=holder.counter,
                meta_key=keyring.meta_read,
                file_key=keyring.file_read(holder.uid),
            )
            self._cards[holder.key] = (holder, card)

    def cards(self) -> list[DemoCard]:
        return [DemoCard(h.key, h.label, h.note) for h, _ in self._cards.values()]

    def tap(self, key: str) -> None:
        _, card = self._cards[key]
        threading.Thread(target=self._tap, args=(card,), name="demo-tap", daemon=True).start()

    def _tap(self, card: object) -> None:
        from firmware_mocks.nfc_tag import TagEmulator
        from firmware_mocks.vpcd_card import VirtualCard

        with self._lock:
            try:
                if isinstance(card, VirtualCard):
                    card.tap(3000, until_feedback=True)
                    time.sleep(0.9)  # a lifted card: pcscd looks every 400 ms
                elif isinstance(self._emulator, TagEmulator):
                    self._emulator.tap(card, 1200)  # type: ignore[arg-type]
            except OSError as exc:
                logger.warning("demo tap failed: %s", exc)


@contextmanager
def running(
    tills: DemoTills, *, data_dir: Path, server: str, master_key: bytes
) -> Iterator[DemoTapper]:
    """The reader side of the demo, from start to stop: pcscd (or the emulator), the
    daemon for the demo till, and the tapper for `/demo/tap`."""
    from cardpay.reader.daemon import ReaderDaemon
    from cardpay.reader.journal import Journal
    from firmware_mocks.nfc_tag import TagEmulator
    from hardware.readers import open_reader
    from moulin import vpcd

    pcscd: vpcd.PrivatePcscd | None = None
    emulator: TagEmulator | None = None
    try:
        pcscd = vpcd.PrivatePcscd()
        try:
            pcscd.start()
        except vpcd.PcscdUnavailable:
            pcscd.stop()
            raise
        device, how = "pcsc:Virtual PCD", f"pcscd with the vpcd driver (port {pcscd.port})"
        # `moulin mock card` finds the demo's reader through this file.
        (data_dir / "vpcd-port").write_text(str(pcscd.port))
    except vpcd.PcscdUnavailable as exc:
        pcscd = None
        emulator = TagEmulator()
        device, how = f"nfc:{emulator.path}", f"nfcpy's udp emulator ({exc}; NTAG215 cards only)"
    logger.warning("demo reader: %s", how)
    journal = Journal(data_dir / "reader" / "journal.db")
    daemon = ReaderDaemon(
        reader=open_reader(device),
        journal=journal,
        server=server,
        token=tills.till_token,
        snapshot_path=data_dir / "reader" / "snapshot.json",
    )
    thread = threading.Thread(target=daemon.run, name="demo-reader", daemon=True)
    thread.start()
    try:
        yield DemoTapper(
            tills, master_key, vpcd_port=pcscd.port if pcscd else None, emulator=emulator
        )
    finally:
        daemon.stop()
        thread.join(10)
        journal.close()
        if emulator is not None:
            emulator.close()
        if pcscd is not None:
            (data_dir / "vpcd-port").unlink(missing_ok=True)
            pcscd.stop()


def serve(tills: DemoTills, *, host: str, port: int, data_dir: Path) -> None:
    """Serve the demo app with the reader side running, until Ctrl+C."""
    import uvicorn

    from moulin import context
    from parent_portal.app import create_app

    settings = context.load_settings()
    app = create_app(settings)
    server = f"http://127.0.0.1:{port}"
    master_key = settings.effective_card_master_key()
    with running(tills, data_dir=data_dir, server=server, master_key=master_key) as tapper:
        app.state.demo_tapper = tapper
        context.console.print(
            f"[bold]Till screen:[/] http://{host}:{port}/till/{tills.till_id} "
            f"(sign in as cashier@…); tap demo cards at http://{host}:{port}/demo/tap "
            f"(reader: {tapper.reader})",
            highlight=False,
        )
        # uvicorn re-raises the signal that stopped it once it is done: make SIGTERM
        # unwind like Ctrl+C does, so that pcscd and the daemon are stopped on the way out.
        signal.signal(signal.SIGTERM, _exit_on_term)
        uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=2)


def _exit_on_term(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)
