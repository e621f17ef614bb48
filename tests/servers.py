"""Real servers for tests: any ASGI app under uvicorn on a loopback port, in its own thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

__all__ = ["run_asgi"]


@contextmanager
def run_asgi(app, *, lifespan: str = "on", startup_timeout_s: float = 60) -> Iterator[str]:
    """Serves `app` on 127.0.0.1 (a free port) until the block ends; yields the base URL.

    The app runs on its own event loop in a thread, exactly as under `sparring serve`, so tests
    talk to it over real HTTP and WebSocket connections."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_config=None, access_log=False, lifespan=lifespan, ws_per_message_deflate=False,
                      proxy_headers=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("the test server did not start; see the log above")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
