"""`/ws/echo`: the microphone test. Binary frames come back as they were sent, so the rep hears
what the gateway receives; it needs a signed-in caller like every other socket."""

from __future__ import annotations

import time
from typing import Any

import msgspec
from litestar import WebSocket, websocket
from litestar.datastructures import State

from coaching.events import ClientPing, client_decoder
from gateway.auth.caller import authenticate
from gateway.errors import BAD_MESSAGE, TOO_BIG, TOO_LONG, AuthRefused, close_socket
from gateway.transports.frames import receive_frame

__all__ = ["echo"]

MAX_FRAME_BYTES = 64 * 1024
MAX_SECONDS = 60


@websocket("/ws/echo")
async def echo(socket: WebSocket[Any, Any, Any], state: State) -> None:
    # Accept first: a close before accept reaches the browser as a bare 1006 with no reason.
    await socket.accept()
    try:
        async with state.pool.acquire() as conn, conn.transaction():
            await authenticate(socket, conn)
    except AuthRefused as refused:
        await close_socket(socket, refused)
        return
    started = time.monotonic()
    while True:
        frame = await receive_frame(socket)
        if frame is None:
            return
        if time.monotonic() - started > MAX_SECONDS:
            await socket.close(TOO_LONG, f"the microphone test lasts at most {MAX_SECONDS} s")
            return
        if (audio := frame.get("bytes")) is not None:
            if len(audio) > MAX_FRAME_BYTES:
                await socket.close(TOO_BIG, f"frames are limited to {MAX_FRAME_BYTES} bytes")
                return
            await socket.send_bytes(audio)
            continue
        try:
            message = client_decoder.decode(frame.get("text") or "")
        except (msgspec.DecodeError, msgspec.ValidationError):
            message = None
        match message:
            case ClientPing():  # JSON like every other socket's: spacing and key order do not matter
                await socket.send_text('{"type":"pong"}')
            case _:
                await socket.close(BAD_MESSAGE, "send binary audio frames (or a ping)")
                return
