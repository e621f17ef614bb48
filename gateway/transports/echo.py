"""`/ws/echo`: the microphone test. Binary frames come back as they were sent, so the rep hears
what the gateway receives; it needs a signed-in caller like every other socket."""

from __future__ import annotations

import time

from litestar import WebSocket, websocket
from litestar.datastructures import State

from gateway.auth.caller import AuthRefused, authenticate
from gateway.transports.close_codes import BAD_MESSAGE, TOO_LONG, close_code_for

__all__ = ["echo"]

MAX_FRAME_BYTES = 64 * 1024
MAX_SECONDS = 60


@websocket("/ws/echo")
async def echo(socket: WebSocket, state: State) -> None:
    # Accept first: a close before accept reaches the browser as a bare 1006 with no reason.
    await socket.accept()
    try:
        async with state.pool.acquire() as conn, conn.transaction():
            await authenticate(socket, conn)
    except AuthRefused as refused:
        await socket.close(close_code_for(refused), refused.message)
        return
    started = time.monotonic()
    while True:
        message = await socket.receive()
        if message["type"] == "websocket.disconnect":
            return
        if time.monotonic() - started > MAX_SECONDS:
            await socket.close(TOO_LONG, f"the microphone test lasts at most {MAX_SECONDS} s")
            return
        if message.get("bytes") is not None:
            if len(message["bytes"]) > MAX_FRAME_BYTES:
                await socket.close(1009, f"frames are limited to {MAX_FRAME_BYTES} bytes")
                return
            await socket.send_bytes(message["bytes"])
        elif message.get("text") == '{"type":"ping"}':
            await socket.send_text('{"type":"pong"}')
        else:
            await socket.close(BAD_MESSAGE, "send binary audio frames (or a ping)")
            return
