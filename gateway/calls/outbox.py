"""One client's outbound frames: a bounded queue and the task that drains it into the socket.

A WebSocket send blocks while the client is slow; the call must never wait for that, so every
client gets its own queue and sender task, and a client that falls too far behind is closed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from litestar import WebSocket
from litestar.connection import ASGIConnection
from litestar.exceptions import WebSocketDisconnect

from gateway.errors import NORMAL, TRY_AGAIN

__all__ = ["Outbox", "RepChannel"]

log = logging.getLogger(__name__)
_CLOSE = object()


class RepChannel(Protocol):
    """Where a call sends the rep's frames: the live socket's `Outbox`, or a WebRTC peer's data
    channel and outbound track (gateway/transports/webrtc.py)."""

    transport: str  # "websocket" or "webrtc", as GET /api/live shows it
    closed: bool

    @property
    def socket(self) -> ASGIConnection[Any, Any, Any, Any]:
        """The connection the rep authenticated on (the revocation sweep reads its caller)."""

    def send_text(self, data: bytes) -> None:
        """One event frame (JSON)."""

    def send_bytes(self, data: bytes) -> None:
        """Persona audio, 24 kHz mono PCM16."""

    def stop_audio(self) -> None:
        """The rep barged in: the persona's audio not yet played is dropped (before the
        interruption's event is durable)."""

    def close(self, code: int = NORMAL, reason: str = "") -> None:
        """Closes after everything queued so far has been sent."""


class Outbox:
    """Args:
        socket: the accepted WebSocket.
        max_frames: frames allowed to wait; past that the client is closed (1013, resume later).
    """

    transport = "websocket"

    def __init__(self, socket: WebSocket, *, max_frames: int = 4000) -> None:
        self.socket = socket
        self._queue: asyncio.Queue = asyncio.Queue()
        self._max_frames = max_frames
        self._task = asyncio.create_task(self._run())
        self.closed = False

    def send_text(self, data: bytes) -> None:
        self._put(("text", data))

    def send_bytes(self, data: bytes) -> None:
        self._put(("bytes", data))

    def stop_audio(self) -> None:
        """Nothing to drop here: the cancelled reply sends no more audio, and the browser stops
        what it buffered at `persona.audio.end {"interrupted": true}`."""

    def close(self, code: int = NORMAL, reason: str = "") -> None:
        """Closes after everything queued so far has been sent."""
        if not self.closed:
            self.closed = True
            self._queue.put_nowait((_CLOSE, (code, reason)))

    def _put(self, item: tuple[str, bytes]) -> None:
        if self.closed:
            return
        if self._queue.qsize() >= self._max_frames:
            self.closed = True
            self._queue.put_nowait((_CLOSE, (TRY_AGAIN, "too far behind; reconnect with last_seq to resume")))
            return
        self._queue.put_nowait(item)

    async def _run(self) -> None:
        try:
            while True:
                kind, data = await self._queue.get()
                if kind is _CLOSE:
                    code, reason = data
                    await self.socket.close(code, reason)
                    return
                if kind == "text":
                    await self.socket.send_text(data.decode())
                else:
                    await self.socket.send_bytes(data)
        except (WebSocketDisconnect, RuntimeError, OSError):
            self.closed = True  # the client went away; the receive loop notices too

    async def drain(self) -> None:
        """Waits until the sender is done (after `close`)."""
        try:
            async with asyncio.timeout(10):
                await asyncio.shield(self._task)
        except (TimeoutError, asyncio.CancelledError):
            self._task.cancel()

    def cancel(self) -> None:
        self.closed = True
        self._task.cancel()
