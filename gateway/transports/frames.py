"""Reading a socket's next frame with its type known (Litestar's `receive` returns any ASGI event)."""

from __future__ import annotations

from typing import Any, cast

from litestar import WebSocket
from litestar.types import WebSocketDisconnectEvent, WebSocketReceiveEvent

__all__ = ["receive_frame"]


async def receive_frame(socket: WebSocket[Any, Any, Any]) -> WebSocketReceiveEvent | None:
    """The client's next frame (its `bytes` or its `text`), or None once the client disconnected."""
    # After accept, an ASGI server sends a WebSocket only these two events.
    event = cast("WebSocketReceiveEvent | WebSocketDisconnectEvent", await socket.receive())
    if event["type"] == "websocket.disconnect":
        return None
    return event
