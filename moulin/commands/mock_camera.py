"""`moulin mock camera`: run a mock IP camera by hand (for trying a camera node, say)."""

from __future__ import annotations

import logging
import threading

import typer

from moulin import context

logger = logging.getLogger(__name__)


def parse_size(size: str) -> tuple[int, int]:
    width, _, height = size.lower().partition("x")
    if not (width.isdigit() and height.isdigit()) or not (16 <= int(width) <= 4096
                                                            and 16 <= int(height) <= 4096):
        context.fail(f"size {size!r} is not WIDTHxHEIGHT, e.g. 640x480")
    return int(width), int(height)


def camera(
    port: int = typer.Option(0, help="Port on 127.0.0.1 (0 picks a free one)."),
    fps: float = typer.Option(10.0, min=0.5, max=60.0, help="Frames per second."),
    size: str = typer.Option("640x480", help="Picture size, WIDTHxHEIGHT."),
) -> None:
    """Serve a synthetic classroom as MJPEG over HTTP until Ctrl+C."""
    from firmware_mocks.ip_camera import IPCamera

    width, height = parse_size(size)
    with IPCamera(width=width, height=height, fps=fps, port=port) as cam:
        context.console.print(f"Mock camera: {cam.url} ({width}x{height} at {fps:g} fps); "
                              f"controls at http://127.0.0.1:{cam.port}/control/…", highlight=False)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            logger.info("mock camera stopping")
