"""An ASGI app served by uvicorn on a free loopback port, in a thread, for tests that need
real HTTP (browsers, concurrent clients, daemons)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


@contextmanager
def serving(app: Any, *, lifespan: bool = False) -> Iterator[str]:
    """`app` on a free loopback port until the block ends; with `lifespan`, its start-up
    and shutdown run too (the cameras' capture, the till's writer)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # No websockets: nothing here needs them, and importing the websockets library can
    # warn, which this test run turns into errors.
    config = uvicorn.Config(app, log_level="warning", ws="none",
                            lifespan="on" if lifespan else "off", http="h11", loop="asyncio",
                            timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive(), "server thread died"
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()
