"""The gateway's app for `bench/echo_servers.py`: as `sparring serve` builds it, plus one bench-only
route, `/ws/echo-raw`, that echoes media frames in plain ASGI (no Litestar WebSocket, no auth), so
Litestar's socket path can be measured against the lowest-level route on the same server."""

from __future__ import annotations

from litestar import asgi
from litestar.types import ASGIApp, Receive, Scope, Send

from gateway.asgi import create as create_gateway

__all__ = ["create"]


@asgi("/ws/echo-raw")
async def echo_raw(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()  # websocket.connect
    await send({"type": "websocket.accept", "subprotocol": None, "headers": []})
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return
        if message.get("bytes") is not None:
            await send({"type": "websocket.send", "bytes": message["bytes"], "text": None})


def create() -> ASGIApp:
    app = create_gateway()
    litestar = app
    while not hasattr(litestar, "register"):  # the Litestar app inside serve_app's layers
        litestar = litestar.app  # type: ignore[attr-defined]
    litestar.register(echo_raw)
    return app
