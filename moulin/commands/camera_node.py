"""`moulin camera-node`: capture and stream a few cameras in a process of their own."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import typer
import uvicorn
from sqlmodel import Session

from moulin import context
from moulin.tuning import tune_for_serving
from school import logs
from school.db import make_engine
from school.devices import device_for_token
from school.errors import SchoolError
from school.models import DeviceKind
from webcam.admin import claim_for_node
from webcam.node import InsecureNode, check_public_url, create_node_app
from webcam.runtime import NodeRole


def _camera_ids(text: str) -> list[int]:
    ids = [part.strip() for part in text.split(",") if part.strip()]
    if not ids or not all(part.isdigit() for part in ids):
        context.fail(f"--cameras takes camera ids separated by commas, not {text!r}")
    return [int(part) for part in ids]


def _token(token_file: Path | None) -> str:
    if token_file is not None:
        return token_file.read_text().strip()
    token = os.environ.get("MOULIN_DEVICE_TOKEN", "")
    if not token:
        context.fail("give the node's device token with --token-file or MOULIN_DEVICE_TOKEN "
                     "(create one with: moulin device add NAME --kind camera_node)")
    return token


def camera_node(
    cameras: str = typer.Option(..., "--cameras", help="Camera ids to serve, e.g. 1,2."),
    port: int = typer.Option(8100, help="Port to listen on."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    public_url: str | None = typer.Option(
        None, help="Base URL browsers reach this node at (default http://HOST:PORT; "
        "https:// required in production)."),
    token_file: Path | None = typer.Option(None, help="File holding the device token."),
) -> None:
    """Serve these cameras from this process; the portal sends their viewers here."""
    settings = context.load_settings()
    ids = _camera_ids(cameras)
    url = public_url or f"http://{host}:{port}"
    production = settings.environment == "production"
    try:  # before claiming: the portal must never hand parents a clear-text address
        check_public_url(url, production=production)
    except InsecureNode as exc:
        context.fail(str(exc))
    eng = make_engine(settings.effective_database_url)  # lives as long as the node
    with Session(eng) as session:
        device = device_for_token(session, _token(token_file))
        if device is None or device.kind is not DeviceKind.CAMERA_NODE or device.id is None:
            context.fail("unknown, revoked or non-camera-node device token")
        try:
            claim_for_node(session=session, device=device, camera_ids=ids,
                           node_url=url)
        except SchoolError as exc:
            context.fail(str(exc))
        session.commit()
        node = NodeRole(device_id=device.id, camera_ids=frozenset(ids))
    app = create_node_app(engine=eng, secret_key=settings.effective_secret_key(), node=node,
                          metrics_token=settings.metrics_token, public_url=url,
                          production=production,
                          session_idle=timedelta(minutes=settings.session_idle_minutes))
    logs.set_process_fields(device=f"camera_node:{device.id}")
    context.console.print(f"Camera node {device.name!r} serving cameras {ids} on "
                          f"http://{host}:{port}/", highlight=False)
    tune_for_serving()
    uvicorn.run(app, host=host, port=port, log_level="info", log_config=None,
                timeout_graceful_shutdown=3)
