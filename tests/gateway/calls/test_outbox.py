"""A slow client never slows the call: its frames wait in its own bounded queue, and a client
that falls too far behind is closed with 1013 (it resumes with last_seq / after_seq)."""

import asyncio
import time

from gateway.calls.outbox import Outbox


class StuckSocket:
    """A WebSocket whose client has stopped reading: every send blocks until released."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.closed_with: tuple[int, str] | None = None
        self.release = asyncio.Event()

    async def send_text(self, data: str) -> None:
        await self.release.wait()
        self.sent.append(data)

    async def send_bytes(self, data: bytes) -> None:
        await self.release.wait()

    async def close(self, code: int, reason: str) -> None:
        self.closed_with = (code, reason)


async def test_a_stuck_client_is_closed_1013_once_too_far_behind_without_blocking_the_sender():
    socket = StuckSocket()
    outbox = Outbox(socket, max_frames=100)
    started = time.perf_counter()
    for i in range(250):
        outbox.send_text(f'{{"seq":{i}}}'.encode())
    assert time.perf_counter() - started < 0.05, "queuing never waits for the client"
    assert outbox.closed
    socket.release.set()
    await outbox.drain()
    assert socket.closed_with == (1013, "too far behind; reconnect with last_seq to resume")
    assert len(socket.sent) <= 101, "nothing past the bound was queued"


async def test_a_client_that_keeps_up_gets_every_frame_in_order_then_the_close():
    socket = StuckSocket()
    socket.release.set()
    outbox = Outbox(socket, max_frames=100)
    for i in range(500):
        outbox.send_text(f'{{"seq":{i}}}'.encode())
        if i % 50 == 0:
            await asyncio.sleep(0)  # the sender task drains as it goes
    outbox.close(1000, "call ended")
    await outbox.drain()
    assert socket.sent == [f'{{"seq":{i}}}' for i in range(500)]
    assert socket.closed_with == (1000, "call ended")
