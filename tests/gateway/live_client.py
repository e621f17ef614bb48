"""A rep's client for the live socket, as a test drives it: send start, audio and text; collect events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

FRAME_MS = 20


class LiveClient:
    def __init__(self, base_url: str, session_id: str, token: str) -> None:
        self.url = base_url.replace("http://", "ws://") + f"/ws/sessions/{session_id}?token={token}"
        self.events: list[dict[str, Any]] = []
        self.audio: dict[str, int] = {}  # bytes of persona audio per reply (between start and end)
        self.audio_frames: list[bytes] = []
        self.close_code: int | None = None
        self.close_reason = ""
        self._current_reply: str | None = None
        self._changed = asyncio.Event()
        self._ws = None
        self._reader: asyncio.Task | None = None

    async def open(self, *, last_seq: int | None = None, sample_rate: int = 16000, start: bool = True) -> LiveClient:
        self._ws = await connect(self.url, max_size=None)
        self._reader = asyncio.create_task(self._read())
        if start:
            try:
                await self.send({"type": "start", "protocol": 1, "last_seq": last_seq,
                                 "audio": {"encoding": "pcm_s16le", "sample_rate": sample_rate, "channels": 1}})
            except ConnectionClosed:
                pass  # refused before `start` arrived (no token, not theirs): the reader has the close code
        return self

    async def send(self, message: dict | str | bytes) -> None:
        await self._ws.send(json.dumps(message) if isinstance(message, dict) else message)

    async def _read(self) -> None:
        try:
            async for frame in self._ws:
                if isinstance(frame, bytes):
                    self.audio_frames.append(frame)
                    if self._current_reply is not None:
                        self.audio[self._current_reply] = self.audio.get(self._current_reply, 0) + len(frame)
                else:
                    event = json.loads(frame)
                    if event["type"] == "persona.audio.start":
                        self._current_reply = event["reply_id"]
                    elif event["type"] == "persona.audio.end":
                        self._current_reply = None
                    self.events.append(event)
                self._changed.set()
        except ConnectionClosed:
            pass
        finally:
            self.close_code, self.close_reason = self._ws.close_code, self._ws.close_reason or ""
            self._changed.set()

    async def wait_for(self, predicate: Callable[[dict], bool], *, timeout: float = 30, after: int = 0) -> dict:
        """The first event (from index `after`) matching `predicate`, waiting up to `timeout` seconds."""
        async def find() -> dict:
            while True:
                for event in self.events[after:]:
                    if predicate(event):
                        return event
                if self.close_code is not None:
                    raise AssertionError(f"socket closed ({self.close_code} {self.close_reason}) before the event came;"
                                         f" got {[e['type'] for e in self.events]}")
                self._changed.clear()
                await self._changed.wait()
        return await asyncio.wait_for(find(), timeout)

    async def wait_closed(self, timeout: float = 30) -> tuple[int, str]:
        async def closed():
            while self.close_code is None:
                self._changed.clear()
                await self._changed.wait()
        await asyncio.wait_for(closed(), timeout)
        return self.close_code, self.close_reason

    async def stream(self, pcm: bytes, *, rate: int = 16000, speed: float = 4.0) -> None:
        """Sends PCM in 20 ms frames, `speed` times faster than real time."""
        step = rate * 2 * FRAME_MS // 1000
        for i in range(0, len(pcm), step):
            await self._ws.send(pcm[i:i + step])
            await asyncio.sleep(FRAME_MS / 1000 / speed)

    async def greeting(self, *, timeout: float = 30) -> dict:
        """Waits until the persona's greeting is over: what it said is logged after its audio ends."""
        return await self.wait_for(lambda e: e["type"] == "transcript.final" and e["speaker"] == "persona",
                                   timeout=timeout)

    async def talk(self, text: str, *, timeout: float = 30) -> dict:
        """Says one line as the rep (typed); returns the persona's final answer to it."""
        mark = len(self.events)
        await self.send({"type": "text", "text": text})
        return await self.wait_for(lambda e: e["type"] == "transcript.final" and e["speaker"] == "persona",
                                   after=mark, timeout=timeout)

    def of_type(self, kind: str) -> list[dict]:
        return [e for e in self.events if e["type"] == kind]

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            await asyncio.wait([self._reader], timeout=5)
